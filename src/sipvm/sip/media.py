"""A call's audio, in the pjsip thread: players and playlists, recorders, levels, RTP counts.

Each function takes a :class:`PjCall` whose audio is active (the engine checks ``call.audio``
first). The call holds its player and recorder: replacing or dropping the reference is what
stops them, and on DISCONNECTED the call drops them itself.
"""

from __future__ import annotations

import wave
from pathlib import Path

import pjsua2 as pj

from sipvm.audio.wav import read_wav_info
from sipvm.sip.callbacks import PjCall, PjPlayer

#: Silence after the last file of a multi-file prompt: longer than pjmedia's playlist buffer
#: (4000 bytes, 0.25 s of 16-bit 8 kHz), which is dropped when the playlist reports its end.
PLAYLIST_PAD_S = 0.3


def play(call: PjCall, player: PjPlayer, files: list[Path], pad: Path) -> None:
    """Start ``player`` on ``files``, one after another, to the caller; ``pad`` (silence, see
    ``PLAYLIST_PAD_S``) ends a playlist of several files."""
    if len(files) == 1:
        player.createPlayer(str(files[0]), pj.PJMEDIA_FILE_NO_LOOP)
    else:
        names = pj.StringVector()
        # A playlist reports its end when it reads its last buffer and drops what is
        # still buffered (up to 0.25 s): pad it, so the prompt's own end is heard.
        for f in [*files, pad]:
            names.append(str(f))
        player.createPlaylist(names, "prompt", pj.PJMEDIA_FILE_NO_LOOP)
    player.startTransmit(call.audio)
    call.player = player  # replaces (and so stops) any earlier one


def check_start(file: Path, start_samples: int) -> None:
    """Refuse a start position pjmedia would abort the process on (at or past the end of the
    data chunk). Called before the player exists: a traceback holding a player would release
    it in whichever thread drops the exception.

    Raises:
        ValueError: ``start_samples`` is not inside the audio.
        CorruptAudioError: the file's header is unreadable.
    """
    info = read_wav_info(file)
    size = info.frames * info.channels
    if not 0 < start_samples < size:
        raise ValueError(f"start {start_samples} is outside {file.name} (0..{size})")


def play_file(call: PjCall, player: PjPlayer, file: Path, start_samples: int) -> None:
    """Start ``player`` on one WAV to the caller, ``start_samples`` in (checked with
    :func:`check_start` when not 0).

    Positions are pjsua2's "samples" (measured): samples of the file's own rate, all channels
    counted, for PCM and A-law alike, whatever the bridge rate.
    """
    player.createPlayer(str(file), pj.PJMEDIA_FILE_NO_LOOP)
    if start_samples:
        player.setPos(start_samples)
    player.startTransmit(call.audio)
    call.player = player  # replaces (and so stops) any earlier one


def playback_position(call: PjCall, token: int) -> int:
    """Where player ``token`` is, in samples of its file; -1 when it is not the call's
    current player.

    Measured trap: pjmedia reads 0 here once its read-ahead buffer has reached the end of the
    file (a seek into the last 4000 bytes, or a file whose length is not a whole number of
    buffers) and after EOF, so 0 means "unknown" unless playback started at 0.
    """
    if call.player is None or call.player.token != token:
        return -1
    return int(call.player.getPos())


def stop_playing(call: PjCall, token: int) -> None:
    """Stop the player ``token`` if it is still the call's current one."""
    if call.player is not None and call.player.token == token:
        call.player = None


def start_recording(call: PjCall, path: Path) -> None:
    """Record what the caller sends into ``path`` (16-bit PCM WAV at 8 kHz)."""
    recorder = pj.AudioMediaRecorder()
    recorder.createRecorder(str(path))
    call.audio.startTransmit(recorder)
    call.recorder = recorder


def stop_recording(call: PjCall) -> None:
    """Stop recording: dropping the recorder writes the WAV sizes and closes the file."""
    if call.recorder is not None:
        call.audio.stopTransmit(call.recorder)
        call.recorder = None


def caller_level(call: PjCall) -> int:
    """The caller's last signal level (0-255); 0 when the call's audio is gone."""
    if call.audio is None:
        return 0
    # Measured: on a call's AudioMedia, getTxLevel() is what the far end sends us and
    # getRxLevel() what we send it (the names are the bridge's point of view).
    return int(call.audio.getTxLevel())


def rtp_received(call: PjCall) -> int:
    """RTP packets (any payload type) received on the call's audio stream so far."""
    if call.audio_index < 0:
        return 0
    try:
        return int(call.getStreamStat(call.audio_index).rtcp.rxStat.pkt)
    except pj.Error:  # no stream (any more)
        return 0


def write_silence(path: Path, seconds: float) -> Path:
    """A 16-bit 8 kHz mono WAV of silence (the format of every prompt and greeting)."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\0\0" * round(seconds * 8000))
    return path
