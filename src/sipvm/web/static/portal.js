// The portal's little script: sign in and out, act on messages through the JSON API, follow
// changes made elsewhere (phone, command line, other browsers) through server-sent events.
// No build step, no library. The page works from the server's HTML; this only adds to it.
"use strict";

(function () {
  const body = document.body;
  const page = body.dataset.page;
  const csrfMeta = document.querySelector('meta[name="csrf-token"]');
  const csrf = csrfMeta ? csrfMeta.content : "";

  // -- talking to the API ------------------------------------------------------------------

  // The server's words for a refusal: {"error": ...} from the API, <p class="error"> on a page.
  async function errorText(response) {
    try {
      const text = await response.text();
      if ((response.headers.get("Content-Type") || "").includes("application/json")) {
        const data = JSON.parse(text);
        if (data && data.error) return data.error;
      } else {
        const found = new DOMParser().parseFromString(text, "text/html").querySelector(".error");
        if (found && found.textContent.trim()) return found.textContent.trim();
      }
    } catch (e) {
      // unreadable: fall through to the status line
    }
    return "the server answered " + response.status + " " + response.statusText;
  }

  // Calls the API; resolves to the JSON answer (or null), rejects with the server's words.
  async function api(method, url, payload) {
    const init = { method: method, credentials: "same-origin", headers: { Accept: "application/json" } };
    if (csrf) init.headers["X-CSRF-Token"] = csrf;
    if (payload instanceof Blob) {
      init.body = payload;
      // only to name the file in an error; the server never uses it as a path
      if (payload instanceof File) init.headers["X-Filename"] = encodeURIComponent(payload.name);
    } else if (payload !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(payload);
    }
    let response;
    try {
      response = await fetch(url, init);
    } catch (e) {
      throw new Error("the server cannot be reached; check your connection and try again");
    }
    if (response.status === 401 && page !== "signin") {
      window.location.assign("/signin?next=" + encodeURIComponent(window.location.pathname));
    }
    if (!response.ok) throw new Error(await errorText(response));
    const type = response.headers.get("Content-Type") || "";
    return type.includes("application/json") ? response.json() : null;
  }

  const notice = document.getElementById("notice");
  let noticeTimer = null;

  function tell(text, kind) {
    if (!notice) return;
    notice.textContent = text;
    notice.className = "notice " + (kind || "info");
    notice.hidden = false;
    clearTimeout(noticeTimer);
    if (kind !== "error") noticeTimer = setTimeout(function () { notice.hidden = true; }, 6000);
  }

  function failed(error) {
    tell(error.message || String(error), "error");
  }

  // -- sign in and out ---------------------------------------------------------------------

  const signinForm = document.getElementById("signin-form");
  if (signinForm) {
    const signinError = document.getElementById("signin-error");
    signinForm.addEventListener("submit", async function (event) {
      event.preventDefault();
      const button = signinForm.querySelector("button[type=submit]");
      button.disabled = true;
      signinError.hidden = true;
      try {
        await api("POST", "/api/v1/session", {
          ext: signinForm.elements.ext.value.trim(),
          pin: signinForm.elements.pin.value.trim(),
        });
        const next = signinForm.dataset.next;
        // the server only hands over a path on this site; checked again all the same
        const local = next && /^\/[A-Za-z0-9\/_.~%?=&+-]*$/.test(next) && !next.startsWith("//");
        window.location.assign(local ? next : "/inboxes");
      } catch (error) {
        signinError.textContent = error.message;
        signinError.hidden = false;
        signinForm.elements.pin.value = "";
        signinForm.elements.pin.focus();
      } finally {
        button.disabled = false;
      }
    });
  }

  const signOut = document.getElementById("sign-out");
  if (signOut) {
    signOut.addEventListener("click", async function () {
      try {
        await api("DELETE", "/api/v1/session");
      } catch (error) {
        // signed out already (expired): the sign-in page is where to go either way
      }
      window.location.assign("/signin");
    });
  }

  // -- an inbox's messages -----------------------------------------------------------------

  const rows = document.getElementById("message-rows");
  const inbox = body.dataset.inbox;

  function messageId(element) {
    const row = element.closest("tr[data-message]");
    return row ? row.dataset.message : null;
  }

  // Brings the table in line with the server: the server renders the rows (names, times in
  // the site's zone, the actions this member may take); rows that are playing keep their
  // audio element so playback goes on.
  let refreshing = null;
  let refreshAgain = false;

  async function refreshRows() {
    if (refreshing) {
      refreshAgain = true;
      return refreshing;
    }
    refreshing = (async function () {
      do {
        refreshAgain = false;
        const url = "/inboxes/" + encodeURIComponent(inbox) + "/rows?page=" + (body.dataset.pageNumber || "1");
        const response = await fetch(url, {
          credentials: "same-origin",
          headers: { Accept: "text/html" },
        });
        if (response.status === 401) {
          window.location.assign("/signin?next=" + encodeURIComponent(window.location.pathname));
          return;
        }
        if (!response.ok) {
          tell(await errorText(response), "error");
          return;
        }
        const holder = document.createElement("template");
        holder.innerHTML = (await response.text()).trim();
        const fresh = holder.content.querySelector("tbody");
        if (fresh) merge(fresh);
      } while (refreshAgain);
    })();
    try {
      await refreshing;
    } finally {
      refreshing = null;
    }
  }

  function merge(fresh) {
    const wanted = new Set();
    let previous = null;
    for (const row of Array.from(fresh.rows)) {
      wanted.add(row.id);
      const current = document.getElementById(row.id);
      if (current) {
        current.className = row.className;
        for (const cell of Array.from(row.cells)) {
          if (cell.classList.contains("play")) continue;
          const old = current.querySelector("td." + cell.classList[0]);
          // an open share form keeps what the member is typing
          if (old && !(old.querySelector("details[open]") && cell.classList.contains("actions"))) {
            old.replaceWith(cell);
          }
        }
        previous = current;
      } else {
        row.classList.add("arrived");
        if (previous) previous.after(row);
        else rows.prepend(row);
        previous = row;
      }
    }
    for (const row of Array.from(rows.rows)) {
      if (!wanted.has(row.id)) row.remove();
    }
    const empty = document.getElementById("no-messages");
    if (empty) empty.hidden = rows.rows.length > 0;
    document.getElementById("messages").classList.toggle("empty", rows.rows.length === 0);
  }

  async function act(element, work, done) {
    element.disabled = true;
    try {
      const answer = await work();
      if (done) tell(typeof done === "function" ? done(answer) : done, "info");
      await refreshRows();
    } catch (error) {
      // e.g. another member deleted it first: say so, and show the inbox as it now is
      failed(error);
      await refreshRows();
    } finally {
      element.disabled = false;
    }
  }

  if (rows && inbox) {
    rows.addEventListener("click", function (event) {
      const button = event.target.closest("button[data-act]");
      if (!button) return;
      const id = messageId(button);
      if (button.dataset.act === "delete") {
        act(button, function () { return api("DELETE", "/api/v1/messages/" + id); },
          "Message deleted for everyone. An admin can restore it within 30 days.");
      } else if (button.dataset.act === "mark-new") {
        act(button, function () { return api("DELETE", "/api/v1/messages/" + id + "/played"); },
          "Message marked new for everyone.");
      }
    });

    rows.addEventListener("submit", function (event) {
      const form = event.target.closest("form[data-act=share]");
      if (!form) return;
      event.preventDefault();
      const id = messageId(form);
      const to = form.elements.to.value.trim();
      const note = form.elements.note.value.trim();
      const payload = note ? { to: to, note: note } : { to: to };
      act(form.querySelector("button"), function () {
        return api("POST", "/api/v1/messages/" + id + "/share", payload);
      }, function () {
        form.reset();
        form.closest("details").open = false;
        return "Message shared with " + to + ".";
      });
    });

    // The audio request marks the message played for everyone; the event stream then updates
    // every open page, this one included.
    rows.addEventListener("error", function (event) {
      if (event.target.tagName !== "AUDIO") return;
      tell("This message cannot be played any more (it may have just been deleted).", "error");
      refreshRows();
    }, true);
  }

  // -- the inbox list ----------------------------------------------------------------------

  const inboxList = document.getElementById("inboxes");

  async function refreshCounts() {
    try {
      const inboxes = await api("GET", "/api/v1/inboxes");
      for (const box of inboxes || []) {
        const item = inboxList.querySelector('li[data-inbox="' + CSS.escape(box.ext) + '"]');
        if (!item) continue;
        item.querySelector('[data-count="new"]').textContent = box.new;
        item.querySelector('[data-count="old"]').textContent = box.old;
        item.classList.toggle("has-new", box.new > 0);
      }
    } catch (error) {
      failed(error);
    }
  }

  // -- greetings ---------------------------------------------------------------------------

  if (page === "greetings" && inbox) {
    const greetingUrl = function (kind) {
      return "/api/v1/inboxes/" + encodeURIComponent(inbox) + "/greetings/" + encodeURIComponent(kind);
    };
    const cardError = function (form, text) {
      const slot = form.closest(".greeting").querySelector(".error");
      slot.textContent = text || "";
      slot.hidden = !text;
    };
    document.addEventListener("submit", async function (event) {
      const form = event.target.closest("form[data-act=upload]");
      if (!form) return;
      event.preventDefault();
      cardError(form, "");
      const file = form.elements.file.files[0];
      if (!file) {
        cardError(form, "Choose an audio file first.");
        return;
      }
      const button = form.querySelector("button[type=submit]");
      button.disabled = true;
      button.textContent = "Uploading…";
      try {
        // the body is the file itself; the server converts any common audio format
        await api("PUT", greetingUrl(form.dataset.kind), file);
        window.location.reload();
      } catch (error) {
        cardError(form, error.message);
        failed(error);
      } finally {
        button.disabled = false;
        button.textContent = "Upload";
      }
    });
    document.addEventListener("click", async function (event) {
      const button = event.target.closest("button[data-act=remove-greeting]");
      if (!button) return;
      const form = button.closest("form");
      button.disabled = true;
      try {
        await api("DELETE", greetingUrl(form.dataset.kind));
        window.location.reload();
      } catch (error) {
        cardError(form, error.message);
        failed(error);
        button.disabled = false;
      }
    });
  }

  // -- live changes ------------------------------------------------------------------------

  // The body's data-live says whether the stream is connected ("on") or reconnecting ("off").

  // Every change to an inbox this member sees arrives as one event naming the inbox and what
  // happened ({"inbox", "message", "action"}); the page asks the server for the new state of
  // what it shows. A new directory revision may change what this member sees or may do:
  // the page is loaded again. A stream that fell behind is told to reload as well.
  function changed(data) {
    let change = {};
    try {
      change = JSON.parse(data || "{}");
    } catch (e) {
      change = {};
    }
    if (change.action === "signed-out") {
      window.location.assign("/signin?next=" + encodeURIComponent(window.location.pathname));
      return;
    }
    if (change.action === "directory" || change.action === "reload") {
      // a page loaded again shows the rights now in force; a message being listened to is
      // not cut off for that: its rows are brought up to date instead
      const playing = Array.from(document.querySelectorAll("audio")).some(function (a) {
        return !a.paused && !a.ended;
      });
      if (playing && rows && inbox) {
        refreshRows();
      } else {
        window.location.reload();
      }
      return;
    }
    if (rows && inbox) {
      if (!change.inbox || String(change.inbox) === inbox) refreshRows();
    } else if (inboxList) {
      refreshCounts();
    }
  }

  if ((rows && inbox) || inboxList) {
    const stream = new EventSource("/api/v1/events");
    stream.addEventListener("message", function (event) { changed(event.data); });
    // After a dropped connection the browser reconnects by itself; what changed meanwhile is
    // fetched once it is back.
    let opened = false;
    stream.addEventListener("open", function () {
      if (opened) changed("{}");
      opened = true;
      body.dataset.live = "on";
    });
    stream.addEventListener("error", function () {
      body.dataset.live = "off";
    });
    window.addEventListener("pagehide", function () { stream.close(); });
  }
})();
