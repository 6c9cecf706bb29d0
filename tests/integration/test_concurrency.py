"""Several members acting on the same messages at the same moment: one consistent state."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

from sipvm.app import App
from sipvm.domain.messages import Outcome

from .conftest import Deposit

REPO = Path(__file__).resolve().parents[2]


async def test_hundreds_of_concurrent_deletes_and_plays(app: App, deposit: Deposit) -> None:
    ids = [(await deposit("2001", seconds=2.1)).id for _ in range(20)]
    members = ["1002", "1001"]  # 1002: delete right; 1001 (admin) may play only

    async def delete(mid: int) -> tuple[str, int, Outcome]:
        return ("delete", mid, (await app.messages.delete(mid, as_member="1002")).outcome)

    async def play(mid: int, who: str) -> tuple[str, int, Outcome]:
        try:
            result = await app.messages.mark_played(mid, as_member=who)
        except Exception as exc:  # a deleted message is refused with NotFoundError
            assert "was deleted by 1002" in str(exc), exc
            return ("play", mid, Outcome.GONE)
        return ("play", mid, result.outcome)

    tasks = [delete(mid) for mid in ids for _ in range(8)]
    tasks += [play(mid, members[i % 2]) for i, mid in enumerate(ids * 8)]
    results = await asyncio.gather(*tasks)  # any exception here fails the test
    assert len(results) == 320
    deletes = Counter(
        mid for kind, mid, outcome in results if kind == "delete" and outcome is Outcome.DONE
    )
    assert deletes == Counter({mid: 1 for mid in ids})  # exactly one winner per message
    already = [r for r in results if r[0] == "delete" and r[2] is Outcome.ALREADY]
    assert len(already) == 20 * 7
    plays = Counter(
        mid for kind, mid, outcome in results if kind == "play" and outcome is Outcome.DONE
    )
    assert all(n <= 1 for n in plays.values())
    assert await app.messages.messages("2001") == []
    db = sqlite3.connect(app.db.path)
    audit = Counter(db.execute("SELECT action FROM audit WHERE inbox = '2001'").fetchall())
    counts = db.execute("SELECT new, old FROM inbox_counts WHERE inbox = '2001'").fetchone()
    db.close()
    assert audit[("delete",)] == 20 and audit[("play",)] == sum(plays.values())
    assert counts == (0, 0)


WORKER = textwrap.dedent(
    """
    import asyncio, json, sys, time
    from pathlib import Path
    from sipvm.app import App

    async def main(data, ids, member, action, start_at):
        app = await App.open(Path(data))
        await asyncio.sleep(max(0.0, start_at - time.time()))  # both start together
        out = []
        try:
            for mid in ids:
                try:
                    result = await getattr(app.messages, action)(mid, as_member=member)
                    out.append([mid, result.outcome.value])
                except Exception as exc:
                    out.append([mid, type(exc).__name__])
        finally:
            await app.close()
        print(json.dumps(out))

    args = sys.argv[1:]
    asyncio.run(main(args[0], json.loads(args[1]), args[2], args[3], float(args[4])))
    """
)


async def test_two_processes_delete_the_same_messages(app: App, deposit: Deposit) -> None:
    ids = [(await deposit("2001", seconds=2.1)).id for _ in range(120)]
    start_at = time.time() + 2.0
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    data = str(app.data_dir)
    # Opposite orders make the two processes collide on every message along the way.
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            WORKER,
            data,
            json.dumps(order),
            "1002",
            "delete",
            str(start_at),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        for order in (ids, ids[::-1])
    ]
    outputs = [await p.communicate() for p in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err.decode()
    results = [r for out, _ in outputs for r in json.loads(out)]
    assert len(results) == 240
    assert Counter(outcome for _, outcome in results) == Counter({"done": 120, "already": 120})
    # Both processes won some: they really ran at the same time and met in the middle.
    per_process = [sum(1 for _, o in json.loads(out) if o == "done") for out, _ in outputs]
    assert min(per_process) > 0, per_process
    done = Counter(mid for mid, outcome in results if outcome == "done")
    assert set(done) == set(ids) and set(done.values()) == {1}
    db = sqlite3.connect(app.db.path)
    deletes = db.execute("SELECT COUNT(*) FROM audit WHERE action = 'delete'").fetchone()[0]
    live = db.execute("SELECT COUNT(*) FROM messages WHERE deleted_at IS NULL").fetchone()[0]
    db.close()
    assert (deletes, live) == (120, 0)
