/*
 * Marquee web page: sign in, pick a profile, browse home rows, search as you
 * type, open a title and start playback (which fetches its HLS manifest).
 *
 * Plain browser JavaScript on the fetch API: no framework and no build step,
 * so the page is served as-is by the API and works wherever the API does.
 * It talks only to the public /v1 routes, like any other client app.
 */
"use strict";

(() => {
  const API = "/v1";
  const TOKEN_KEY = "marquee.token";
  const REFRESH_KEY = "marquee.refresh";
  const PROFILE_KEY = "marquee.profile";
  const SEARCH_DEBOUNCE_MS = 250;

  const $ = (id) => document.getElementById(id);
  const state = {
    token: sessionStorage.getItem(TOKEN_KEY),
    refreshToken: sessionStorage.getItem(REFRESH_KEY),
    profile: storedProfile(),
    signup: false,
    previousView: "home-view",
    searchSeq: 0,
    searchTimer: null,
    player: null,
    durations: {}, // content id -> duration in seconds (heartbeats need it)
  };

  /** The profile picked earlier in this tab, or null (also when the stored value is unreadable). */
  function storedProfile() {
    try {
      return JSON.parse(sessionStorage.getItem(PROFILE_KEY) || "null");
    } catch {
      return null;
    }
  }

  // ---------------------------------------------------------------- HTTP

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  /** Turn an error body (FastAPI's {detail} in its string or list form) into one readable line. */
  function errorMessage(body, status) {
    if (!body) return `request failed (HTTP ${status})`;
    const detail = body.detail ?? body.message ?? body.error;
    if (typeof detail === "string") return detail;
    if (Array.isArray(detail)) {
      return detail
        .map((d) => {
          const where = Array.isArray(d.loc) ? d.loc.filter((p) => p !== "body").join(".") : "";
          return where ? `${where}: ${d.msg}` : d.msg;
        })
        .join("; ");
    }
    if (detail && typeof detail === "object" && detail.message) return detail.message;
    return `request failed (HTTP ${status})`;
  }

  /**
   * Call the API. JSON answers come back parsed, others as text; with ``withHeaders``
   * the result is ``{ body, headers }`` (the manifest's resume position is a header).
   * An expired access token is refreshed once, then the call is retried.
   */
  async function api(
    path,
    { method = "GET", json, form, accept, withHeaders = false, keepalive = false, retried = false } = {},
  ) {
    const headers = {};
    if (state.token) headers.Authorization = `Bearer ${state.token}`;
    if (accept) headers.Accept = accept;
    let body;
    if (json !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(json);
    } else if (form !== undefined) {
      body = new URLSearchParams(form);
    }
    let response;
    try {
      response = await fetch(API + path, { method, headers, body, keepalive });
    } catch {
      throw new ApiError(0, "cannot reach the Marquee API; check your connection or that the API is running");
    }
    const type = response.headers.get("content-type") || "";
    const payload = type.includes("json") ? await response.json().catch(() => null) : await response.text();
    if (!response.ok) {
      if (response.status === 401 && state.token) {
        if (!retried && state.refreshToken && (await refreshTokens())) {
          return api(path, { method, json, form, accept, withHeaders, keepalive, retried: true });
        }
        signOut("Your session has ended; please sign in again.");
      }
      throw new ApiError(response.status, errorMessage(typeof payload === "object" ? payload : null, response.status));
    }
    return withHeaders ? { body: payload, headers: response.headers } : payload;
  }

  function keepTokens(pair) {
    state.token = pair.access_token;
    state.refreshToken = pair.refresh_token || null;
    sessionStorage.setItem(TOKEN_KEY, state.token);
    if (state.refreshToken) sessionStorage.setItem(REFRESH_KEY, state.refreshToken);
  }

  /** Exchange the refresh token (rotated on use) for a new pair; false when it is no longer valid. */
  async function refreshTokens() {
    try {
      const response = await fetch(`${API}/auth/refresh`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ refresh_token: state.refreshToken }),
      });
      if (!response.ok) return false;
      keepTokens(await response.json());
      return true;
    } catch {
      return false;
    }
  }

  // ------------------------------------------------------- shape helpers

  /** A list from a bare array or from the usual envelope keys. */
  function listOf(payload, ...keys) {
    if (Array.isArray(payload)) return payload;
    for (const key of [...keys, "items", "results", "data"]) {
      if (payload && Array.isArray(payload[key])) return payload[key];
    }
    return [];
  }

  const titleId = (t) => t.title_id ?? t.id;
  const titleName = (t) => t.title ?? t.name ?? titleId(t);
  const profileId = (p) => p.profile_id ?? p.id;

  /** A stable colour per title so cards are easy to tell apart without artwork. */
  function hue(text) {
    let h = 2166136261;
    for (const ch of String(text)) h = Math.imul(h ^ ch.codePointAt(0), 16777619);
    // FNV-1a alone varies little in the low bits for ids that differ in one character: mix them.
    h ^= h >>> 15;
    h = Math.imul(h, 0x2c1b3c6d);
    h ^= h >>> 12;
    return (h >>> 0) % 360;
  }

  /** The title's poster, drawn from its name and genre (poster.js); a plain gradient if that script is absent. */
  function posterStyle(el, title) {
    if (window.MarqueePoster) {
      window.MarqueePoster.paint(el, title);
      return;
    }
    const h = hue(titleId(title));
    el.style.background = `linear-gradient(135deg, hsl(${h} 55% 38%), hsl(${(h + 40) % 360} 60% 22%))`;
  }

  function fmtDuration(seconds) {
    const s = Math.max(0, Math.round(Number(seconds) || 0));
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const sec = s % 60;
    const mm = String(m).padStart(h ? 2 : 1, "0");
    return h ? `${h}:${mm}:${String(sec).padStart(2, "0")}` : `${mm}:${String(sec).padStart(2, "0")}`;
  }

  // --------------------------------------------------------------- views

  const VIEWS = ["auth-view", "profiles-view", "home-view", "search-view", "title-view"];

  function show(view) {
    if (view !== "title-view") stopPlayback();
    for (const id of VIEWS) $(id).hidden = id !== view;
    const inside = view !== "auth-view" && view !== "profiles-view";
    $("search-wrap").hidden = !inside;
    $("who").hidden = !state.token;
    $("current-profile").textContent = inside && state.profile ? state.profile.name || "" : "";
    $("switch-profile").hidden = !inside;
    document.body.dataset.view = view;
  }

  function notice(message) {
    const el = $("notice");
    el.textContent = message || "";
    el.hidden = !message;
  }

  // ---------------------------------------------------------------- auth

  function setAuthMode(signup) {
    state.signup = signup;
    $("auth-heading").textContent = signup ? "Create your account" : "Sign in";
    $("auth-submit").textContent = signup ? "Sign up" : "Sign in";
    $("auth-switch-text").textContent = signup ? "Already have an account?" : "New here?";
    $("auth-toggle").textContent = signup ? "Sign in" : "Create an account";
    $("auth-country-row").hidden = !signup;
    $("auth-password").autocomplete = signup ? "new-password" : "current-password";
    $("auth-error").textContent = "";
  }

  async function onAuthSubmit(event) {
    event.preventDefault();
    const email = $("auth-email").value.trim();
    const password = $("auth-password").value;
    const error = $("auth-error");
    error.textContent = "";
    if (!email || !email.includes("@")) {
      error.textContent = "Enter your email address, e.g. name@example.com.";
      return;
    }
    if (password.length < 8) {
      error.textContent = "The password needs at least 8 characters.";
      return;
    }
    $("auth-submit").disabled = true;
    try {
      if (state.signup) {
        const country = ($("auth-country").value || "US").trim().toUpperCase();
        await api("/auth/signup", { method: "POST", json: { email, password, country } });
      }
      keepTokens(await api("/auth/token", { method: "POST", form: { username: email, password } }));
      $("auth-password").value = "";
      await showProfiles();
    } catch (err) {
      state.token = null;
      error.textContent = err.message;
    } finally {
      $("auth-submit").disabled = false;
    }
  }

  function signOut(message) {
    state.token = null;
    state.refreshToken = null;
    state.profile = null;
    sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.removeItem(REFRESH_KEY);
    sessionStorage.removeItem(PROFILE_KEY);
    setAuthMode(false);
    show("auth-view");
    notice(message || "");
  }

  // ------------------------------------------------------------ profiles

  async function showProfiles() {
    notice("");
    show("profiles-view");
    const list = $("profile-list");
    list.replaceChildren();
    let profiles = [];
    try {
      profiles = listOf(await api("/profiles"), "profiles");
    } catch (err) {
      $("profile-error").textContent = err.message;
      return;
    }
    for (const profile of profiles) {
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.className = "profile-tile";
      button.dataset.testid = "profile-tile";
      button.dataset.profileId = profileId(profile);
      const avatar = document.createElement("span");
      avatar.className = "avatar";
      avatar.textContent = (profile.name || "?").slice(0, 1).toUpperCase();
      avatar.style.background = `hsl(${hue(profile.name || profileId(profile))} 55% 45%)`;
      const name = document.createElement("span");
      name.textContent = profile.name || profileId(profile);
      button.append(avatar, name);
      button.addEventListener("click", () => selectProfile(profile));
      li.append(button);
      list.append(li);
    }
    $("profile-name").focus();
  }

  async function onProfileSubmit(event) {
    event.preventDefault();
    const name = $("profile-name").value.trim();
    const error = $("profile-error");
    error.textContent = "";
    if (!name) {
      error.textContent = "Give the profile a name.";
      return;
    }
    const isKids = $("profile-kids").checked;
    $("profile-create").disabled = true;
    try {
      const liked = $("profile-liked").value.split(",").map((id) => id.trim()).filter(Boolean);
      const body = { name, is_kids: isKids, liked_titles: liked };
      const created = await api("/profiles", { method: "POST", json: body });
      $("profile-name").value = "";
      $("profile-liked").value = "";
      await selectProfile(created);
    } catch (err) {
      error.textContent = err.message;
    } finally {
      $("profile-create").disabled = false;
    }
  }

  async function selectProfile(profile) {
    state.profile = profile;
    sessionStorage.setItem(PROFILE_KEY, JSON.stringify(profile));
    await showHome();
  }

  // ---------------------------------------------------------------- home

  function titleCard(item) {
    const card = document.createElement("button");
    card.className = "title-card";
    card.dataset.testid = "title-card";
    card.dataset.titleId = titleId(item);
    const poster = document.createElement("div");
    poster.className = "poster";
    posterStyle(poster, item);
    const name = document.createElement("div");
    name.className = "name";
    name.textContent = titleName(item);
    const sub = document.createElement("div");
    sub.className = "sub";
    const genres = Array.isArray(item.genres) ? item.genres.slice(0, 2).join(" · ") : "";
    sub.textContent = [item.release_year, genres].filter(Boolean).join(" · ");
    card.append(poster, name, sub);
    const position = item.position_s ?? item.resume_position_s;
    const duration = item.duration_s;
    if (position && duration) {
      const bar = document.createElement("div");
      bar.className = "progress";
      const fill = document.createElement("span");
      fill.style.width = `${Math.min(100, (100 * position) / duration).toFixed(1)}%`;
      bar.append(fill);
      card.append(bar);
    }
    card.addEventListener("click", () => openTitle(titleId(item)));
    return card;
  }

  async function showHome() {
    notice("");
    show("home-view");
    const rows = $("rows");
    rows.replaceChildren();
    $("home-source").textContent = "Loading…";
    let home;
    try {
      home = await api(`/profiles/${encodeURIComponent(profileId(state.profile))}/home`);
    } catch (err) {
      $("home-source").textContent = "";
      if (err.status === 404) {
        // The remembered profile no longer exists (e.g. a fresh database): pick again.
        await showProfiles();
      } else {
        notice(`Could not load the home page: ${err.message}`);
      }
      return;
    }
    const rowList = listOf(home, "rows");
    for (const row of rowList) {
      const items = listOf(row, "items", "titles");
      if (!items.length) continue;
      const section = document.createElement("section");
      section.className = "row";
      section.dataset.testid = "row";
      section.dataset.rowKey = row.key ?? row.row_key ?? "";
      const h = document.createElement("h2");
      h.textContent = row.title ?? row.label ?? row.name ?? row.key;
      const strip = document.createElement("div");
      strip.className = "row-items";
      for (const item of items) strip.append(titleCard(item));
      section.append(h, strip);
      rows.append(section);
    }
    $("home-source").dataset.source = (home && home.source) || "";
    $("home-source").textContent = rowList.length ? sourceLine(home) : "Nothing to show yet: the catalog is empty.";
  }

  /** Say whether the rows are personalised, or popular picks because the model server could not answer. */
  function sourceLine(home) {
    if (!home || !home.source) return "";
    // The API words its own status (``notice``): it never says "unavailable" over personalised rows.
    if (home.notice) return home.notice;
    if (home.source === "fallback") {
      const why = home.fallback_reason ? ` (${String(home.fallback_reason).replaceAll("_", " ")})` : "";
      return `Popular picks: personalised recommendations are unavailable right now${why}.`;
    }
    return `Picked for ${state.profile && state.profile.name ? state.profile.name : "you"}.`;
  }

  // -------------------------------------------------------------- search

  function onSearchInput() {
    clearTimeout(state.searchTimer);
    state.searchTimer = setTimeout(runSearch, SEARCH_DEBOUNCE_MS);
  }

  async function runSearch() {
    const query = $("search-input").value.trim();
    if (!query) {
      if (!$("search-view").hidden) await showHome();
      return;
    }
    const seq = ++state.searchSeq;
    const params = new URLSearchParams({ q: query });
    if (state.profile) params.set("profile_id", profileId(state.profile));
    let payload;
    try {
      payload = await api(`/search?${params}`);
    } catch (err) {
      if (seq === state.searchSeq) notice(`Search failed: ${err.message}`);
      return;
    }
    // Answers can arrive out of order; only the latest query may paint.
    if (seq !== state.searchSeq) return;
    notice("");
    show("search-view");
    $("search-query").textContent = query;
    const results = listOf(payload, "results", "items", "titles");
    const grid = $("search-results");
    grid.replaceChildren(...results.map((r) => titleCard(r.title && typeof r.title === "object" ? r.title : r)));
    $("search-empty").hidden = results.length > 0;
  }

  // --------------------------------------------------------------- title

  async function openTitle(id) {
    const current = VIEWS.find((v) => !$(v).hidden);
    if (current && current !== "title-view") state.previousView = current;
    notice("");
    stopPlayback();
    $("player").hidden = true;
    $("manifest-text").textContent = "";
    $("play-error").textContent = "";
    let title;
    try {
      const params = state.profile ? `?profile_id=${encodeURIComponent(profileId(state.profile))}` : "";
      title = await api(`/titles/${encodeURIComponent(id)}${params}`);
    } catch (err) {
      notice(`Could not open the title: ${err.message}`);
      return;
    }
    show("title-view");
    const view = $("title-view");
    view.dataset.titleId = titleId(title) ?? id;
    if (title.duration_s) state.durations[titleId(title) ?? id] = title.duration_s;
    for (const season of Array.isArray(title.seasons) ? title.seasons : []) {
      for (const episode of season.episodes || []) state.durations[episode.episode_id] = episode.duration_s;
    }
    $("title-name").textContent = titleName(title);
    posterStyle($("title-poster"), title);
    const genres = Array.isArray(title.genres) ? title.genres.join(", ") : "";
    const seasons = Array.isArray(title.seasons) ? title.seasons.length : 0;
    const duration = seasons
      ? `${seasons} season${seasons > 1 ? "s" : ""}`
      : title.duration_s
        ? `${Math.round(title.duration_s / 60)} min`
        : "";
    $("title-meta").textContent = [title.release_year, title.maturity_rating, duration, genres]
      .filter(Boolean)
      .join(" · ");
    $("title-synopsis").textContent = title.synopsis || "";
    const cast = Array.isArray(title.cast) && title.cast.length ? `Cast: ${title.cast.slice(0, 5).join(", ")}` : "";
    const director =
      Array.isArray(title.director) && title.director.length ? `Director: ${title.director.join(", ")}` : "";
    $("title-people").textContent = [cast, director].filter(Boolean).join("  ·  ");
    renderEpisodes(Array.isArray(title.seasons) ? title.seasons : []);
  }

  /** A series lists its seasons; each episode plays on its own (Play on the series starts the first). */
  function renderEpisodes(seasons) {
    const box = $("episodes");
    box.replaceChildren();
    box.hidden = seasons.length === 0;
    for (const season of seasons) {
      const heading = document.createElement("h3");
      heading.textContent = `Season ${season.season_number}`;
      box.append(heading);
      for (const episode of season.episodes || []) {
        const button = document.createElement("button");
        button.className = "episode";
        button.dataset.testid = "episode";
        button.dataset.episodeId = episode.episode_id;
        const number = document.createElement("span");
        number.className = "number";
        number.textContent = `E${episode.episode_number}`;
        const name = document.createElement("span");
        name.textContent = episode.title || `Episode ${episode.episode_number}`;
        const length = document.createElement("span");
        length.className = "length";
        length.textContent = episode.duration_s ? `${Math.round(episode.duration_s / 60)} min` : "";
        button.append(number, name, length);
        button.addEventListener("click", () => play(episode.episode_id));
        box.append(button);
      }
    }
  }

  function onPlay() {
    return play($("title-view").dataset.titleId);
  }

  /** Fetch the manifest of a movie, a series (its first episode) or one episode, and play it. */
  async function play(id) {
    if (!id || !state.profile) return;
    stopPlayback();
    $("play-error").textContent = "";
    $("play-button").disabled = true;
    const format = $("player-format").value === "dash" ? "dash" : "hls";
    const pressedAt = performance.now();
    try {
      const params = new URLSearchParams({ profile_id: profileId(state.profile), format, device: "web" });
      const answer = await api(`/playback/${encodeURIComponent(id)}/manifest?${params}`, {
        accept: "application/vnd.apple.mpegurl, application/dash+xml, application/json, text/plain",
        withHeaders: true,
      });
      renderManifest(answer.body, answer.headers, format, pressedAt);
    } catch (err) {
      $("play-error").textContent = err.message;
    } finally {
      $("play-button").disabled = false;
    }
  }

  /** Show where playback resumes and the manifest, then start the player on it. */
  function renderManifest(payload, headers, format, pressedAt) {
    let text = "";
    let resume = Number(headers.get("X-Resume-Position") || 0);
    if (typeof payload === "string") {
      text = payload;
    } else if (payload) {
      text = payload.manifest ?? payload.content ?? "";
      resume = payload.resume_position_s ?? payload.resume_s ?? resume;
    }
    const edge = headers.get("X-Cdn-Edge");
    const content = headers.get("X-Content-Id");
    $("manifest-text").textContent = text;
    $("manifest-url").textContent = [content && `Content ${content}`, edge && `CDN edge ${edge}`, format.toUpperCase()]
      .filter(Boolean)
      .join(" · ");
    $("resume-position").textContent = resume > 0 ? `Resuming at ${fmtDuration(resume)}` : "Starting from the beginning";
    $("resume-position").dataset.seconds = String(resume);
    $("player").hidden = false;
    startPlayback({ manifest: text, format, contentId: content, resumeS: resume, edge, pressedAt });
  }

  // -------------------------------------------------------------- player

  function setOverlay(message) {
    const overlay = $("player-overlay");
    overlay.textContent = message || "";
    overlay.hidden = !message;
  }

  function renderStats(s) {
    const rendition = $("stat-rendition");
    rendition.textContent = s.height ? `${s.height}p · ${Math.round(s.bitrate / 1000)} kbit/s` : "–";
    rendition.dataset.height = String(s.height || 0);
    rendition.dataset.bitrate = String(s.bitrate || 0);
    $("stat-buffer").textContent = `${s.bufferS.toFixed(1)} s`;
    $("stat-buffer").dataset.seconds = s.bufferS.toFixed(2);
    $("stat-startup").textContent = s.startupMs === null ? "–" : `${s.startupMs} ms`;
    $("stat-rebuffers").textContent = s.rebufferCount ? `${s.rebufferCount} (${s.rebufferS.toFixed(1)} s)` : "0";
    $("stat-switches").textContent = String(s.switches);
    $("player-stats").dataset.sessionId = s.sessionId;
  }

  /** Post the session's QoE totals; ``keepalive`` lets the last one outlive the page. */
  function sendBeacon(profile, body) {
    api(`/profiles/${encodeURIComponent(profileId(profile))}/playback-sessions`, {
      method: "POST",
      json: body,
      keepalive: true,
    }).catch(() => null); // QoE reporting never interrupts playback
  }

  function sendHeartbeat(profile, body) {
    api(`/profiles/${encodeURIComponent(profileId(profile))}/events`, { method: "POST", json: body, keepalive: true }).catch(
      () => null,
    );
  }

  function startPlayback({ manifest, format, contentId, resumeS, edge, pressedAt }) {
    const video = $("video");
    const profile = state.profile;
    setOverlay("");
    state.player = new window.MarqueePlayer.Session(video, {
      manifest,
      format,
      contentId,
      durationS: state.durations[contentId] || 0,
      resumeS,
      edge,
      onStats: renderStats,
      onHeartbeat: (body) => sendHeartbeat(profile, body),
      onBeacon: (body) => sendBeacon(profile, body),
      onError: (message) => {
        $("play-error").textContent = message;
        setOverlay(message);
      },
    });
    state.player.pressedAt = pressedAt;
    window.marqueePlayer = state.player; // for the browser tests and the curious
  }

  function stopPlayback() {
    if (state.player) {
      state.player.close();
      state.player = null;
    }
    setOverlay("");
  }

  // --------------------------------------------------------------- start

  function back() {
    stopPlayback();
    if (state.previousView === "search-view" && $("search-input").value.trim()) show("search-view");
    else showHome();
  }

  function start() {
    $("auth-form").addEventListener("submit", onAuthSubmit);
    $("auth-toggle").addEventListener("click", () => setAuthMode(!state.signup));
    $("profile-form").addEventListener("submit", onProfileSubmit);
    $("search-input").addEventListener("input", onSearchInput);
    $("search-input").addEventListener("keydown", (e) => {
      if (e.key === "Escape") {
        $("search-input").value = "";
        clearTimeout(state.searchTimer);
        state.searchSeq += 1; // an answer still in flight must not paint over home
        showHome();
      }
    });
    document.addEventListener("keydown", (e) => {
      // "/" jumps to search, as on most video sites, unless the user is typing somewhere.
      const typing = ["INPUT", "TEXTAREA"].includes(document.activeElement?.tagName);
      if (e.key === "/" && !typing && !$("search-wrap").hidden) {
        e.preventDefault();
        $("search-input").focus();
      }
    });
    $("title-back").addEventListener("click", back);
    $("play-button").addEventListener("click", onPlay);
    $("switch-profile").addEventListener("click", showProfiles);
    $("logout").addEventListener("click", async () => {
      // Revoke both tokens server-side; sign out locally whatever the answer.
      const refresh = state.refreshToken;
      await api("/auth/logout", { method: "POST", json: refresh ? { refresh_token: refresh } : undefined }).catch(
        () => null,
      );
      signOut("");
    });
    $("brand").addEventListener("click", (e) => {
      e.preventDefault();
      if (state.token && state.profile) {
        $("search-input").value = "";
        showHome();
      }
    });
    // Leaving the page ends the playback session: its last beacon goes out with keepalive.
    window.addEventListener("pagehide", stopPlayback);
    setAuthMode(false);
    if (!state.token) show("auth-view");
    else if (!state.profile) showProfiles();
    else showHome();
  }

  start();
})();
