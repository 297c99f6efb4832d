/*
 * Marquee video player: plays the manifest the API returns, with hls.js (HLS) or
 * dash.js (DASH), both served from /static/vendor (bundled by `make web`, so the
 * page fetches nothing from elsewhere at run time).
 *
 * The API answers the manifest itself (text with absolute, signed URLs); the
 * player hands it to the engine as a blob: URL. One engine-independent layer on
 * top measures the quality of experience from the <video> element's own events:
 *
 *   startup time    Play pressed -> first frame ("playing")
 *   rebuffers       "waiting" after the first frame, not caused by a seek
 *   bitrate switches changes of the decoded height ("resize")
 *   average bitrate time-weighted over the rendition actually shown
 *
 * and reports it through ``onBeacon`` (posted to /v1/profiles/{id}/playback-sessions)
 * while ``onHeartbeat`` carries the position to the events route.
 */
"use strict";

(() => {
  const HEARTBEAT_MS = 10_000;
  const BEACON_MS = 30_000;
  const STATS_MS = 500;

  /** A random id (crypto.randomUUID needs a secure context; loopback http is one, a LAN address is not). */
  function newId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 12)}`;
  }

  /** The forward buffer target in seconds (30 s; a debugging override in localStorage, used by the tests). */
  function bufferGoal() {
    const forced = Number(localStorage.getItem("marquee.bufferSeconds"));
    return forced > 0 ? forced : 30;
  }

  /** Seconds buffered ahead of the play head. */
  function bufferedAhead(video) {
    const t = video.currentTime;
    for (let i = 0; i < video.buffered.length; i += 1) {
      if (video.buffered.start(i) <= t + 0.25 && video.buffered.end(i) >= t) return video.buffered.end(i) - t;
    }
    return 0;
  }

  /** One readable sentence for an HTTP status met while loading media. */
  function httpProblem(status) {
    if (status === 403 || status === 410) {
      return "This video link has expired or is no longer valid. Press Play again to get a fresh one.";
    }
    if (status === 404) return "This video is not available on the streaming server (HTTP 404).";
    if (status >= 500) return `The streaming server failed (HTTP ${status}). Try again in a moment.`;
    if (status === 0) return "Cannot reach the streaming server; check your connection.";
    return `The video could not be loaded (HTTP ${status}).`;
  }

  class Session {
    /**
     * @param {HTMLVideoElement} video
     * @param {object} opts { manifest, format, contentId, durationS, resumeS, edge, onStats, onError,
     *                        onHeartbeat, onBeacon }
     */
    constructor(video, opts) {
      this.video = video;
      this.opts = opts;
      this.id = newId();
      this.format = opts.format;
      this.pressedAt = performance.now();
      this.startupMs = null;
      this.rebufferCount = 0;
      this.rebufferS = 0;
      this.stallStartedAt = null;
      this.seeking = false;
      this.switches = 0;
      this.lastHeight = 0;
      this.bitrateSeconds = 0; // sum of bitrate(bit/s) * seconds shown
      this.playedS = 0;
      this.lastTick = null;
      this.fatal = null;
      this.levels = []; // [{height, bitrate}]
      this.closed = false;
      this.reportSeq = 0;
      this.timers = [];
      this.listeners = [];
      delete video.dataset.startupMs; // the element outlives sessions: no stale figure from the last one
      video.dataset.sessionId = this.id;
      this.blobUrl = URL.createObjectURL(
        new Blob([opts.manifest], { type: this.format === "dash" ? "application/dash+xml" : "application/x-mpegurl" }),
      );
      this.watchVideo();
      if (this.format === "dash") this.startDash();
      else this.startHls();
      this.timers.push(setInterval(() => this.tick(), STATS_MS));
      this.timers.push(setInterval(() => this.heartbeat(), HEARTBEAT_MS));
      this.timers.push(setInterval(() => this.beacon(false), BEACON_MS));
    }

    on(target, name, fn) {
      target.addEventListener(name, fn);
      this.listeners.push([target, name, fn]);
    }

    watchVideo() {
      const v = this.video;
      this.on(v, "playing", () => {
        if (this.startupMs === null) {
          this.startupMs = Math.round(performance.now() - this.pressedAt);
          v.dataset.startupMs = String(this.startupMs);
          this.beacon(false);
        }
        this.endStall();
      });
      this.on(v, "waiting", () => {
        // A stall after the first frame that no seek explains is a rebuffer.
        if (this.startupMs !== null && !this.seeking && this.stallStartedAt === null && !v.ended) {
          this.stallStartedAt = performance.now();
          this.rebufferCount += 1;
        }
      });
      this.on(v, "seeking", () => {
        this.seeking = true;
      });
      this.on(v, "seeked", () => {
        this.seeking = false;
      });
      this.on(v, "resize", () => {
        if (this.lastHeight && v.videoHeight && v.videoHeight !== this.lastHeight) this.switches += 1;
        if (v.videoHeight) this.lastHeight = v.videoHeight;
        this.tick();
      });
      this.on(v, "pause", () => this.heartbeat());
      this.on(v, "ended", () => {
        this.heartbeat();
        this.beacon(false);
      });
      this.on(v, "error", () => {
        const code = v.error ? v.error.code : 0;
        this.fail(`media_error_${code}`, "The video could not be decoded by this browser.");
      });
    }

    endStall() {
      if (this.stallStartedAt !== null) {
        this.rebufferS += (performance.now() - this.stallStartedAt) / 1000;
        this.stallStartedAt = null;
      }
    }

    // ------------------------------------------------------------ engines

    startHls() {
      if (!window.Hls) {
        this.fail("player_missing", "The video player is not installed on this server (run `make web`).");
        return;
      }
      const Hls = window.Hls;
      if (!Hls.isSupported()) {
        this.fail("unsupported", "This browser cannot play HLS video (Media Source Extensions are missing).");
        return;
      }
      const goal = bufferGoal();
      this.hls = new Hls({
        startPosition: this.opts.resumeS > 0 ? this.opts.resumeS : -1,
        maxBufferLength: goal,
        maxMaxBufferLength: goal,
        // Start from the measured link, not a fixed 500 kbit/s guess.
        testBandwidth: true,
        // Bandwidth estimate half-lives, in seconds of download time (defaults 3 / 9): shorter, so
        // a link that recovers is trusted again within a few segments instead of a minute or two.
        abrEwmaFastVoD: 1.5,
        abrEwmaSlowVoD: 4,
        capLevelToPlayerSize: false,
      });
      this.hls.on(Hls.Events.MANIFEST_PARSED, (_e, data) => {
        this.levels = data.levels.map((l) => ({ height: l.height, bitrate: l.bitrate }));
        this.video.play().catch(() => null);
      });
      this.hls.on(Hls.Events.ERROR, (_e, data) => {
        if (!data.fatal) return;
        const status = data.response ? data.response.code : data.networkDetails ? data.networkDetails.status : 0;
        if (data.type === Hls.ErrorTypes.NETWORK_ERROR) {
          this.fail(`http_${status || 0}`, httpProblem(status || 0));
        } else if (data.type === Hls.ErrorTypes.MEDIA_ERROR) {
          this.fail(`media_${data.details}`, `The video stream is damaged (${data.details}).`);
        } else {
          this.fail(`hls_${data.details}`, `Playback failed (${data.details}).`);
        }
      });
      this.hls.loadSource(this.blobUrl);
      this.hls.attachMedia(this.video);
    }

    startDash() {
      if (!window.dashjs) {
        this.fail("player_missing", "The video player is not installed on this server (run `make web`).");
        return;
      }
      const dashjs = window.dashjs;
      const player = dashjs.MediaPlayer().create();
      this.dash = player;
      const goal = bufferGoal();
      player.updateSettings({
        debug: { logLevel: dashjs.Debug.LOG_LEVEL_WARNING },
        streaming: {
          buffer: { bufferTimeDefault: Math.min(goal, 12), bufferTimeAtTopQuality: goal, bufferTimeAtTopQualityLongForm: goal },
          retryAttempts: { MPD: 1, MediaSegment: 1, InitializationSegment: 1 },
        },
      });
      player.on(dashjs.MediaPlayer.events.STREAM_INITIALIZED, () => {
        const reps = player.getRepresentationsByType ? player.getRepresentationsByType("video") : [];
        this.levels = (reps || []).map((r) => ({ height: r.height, bitrate: r.bandwidth }));
      });
      player.on(dashjs.MediaPlayer.events.ERROR, (e) => {
        const error = e.error || {};
        const text = String(error.message || "");
        const status = /\b(40[34]|410|5\d\d)\b/.exec(text);
        if (status) this.fail(`http_${status[1]}`, httpProblem(Number(status[1])));
        else this.fail(`dash_${error.code ?? "error"}`, `Playback failed (${text || "DASH error"}).`);
      });
      player.initialize(this.video, this.blobUrl, true, this.opts.resumeS > 0 ? this.opts.resumeS : undefined);
    }

    // -------------------------------------------------------------- stats

    currentBitrate() {
      const h = this.video.videoHeight;
      const level = this.levels.find((l) => l.height === h);
      return level ? level.bitrate : 0;
    }

    tick() {
      const v = this.video;
      const now = performance.now();
      if (this.lastTick !== null && !v.paused && !v.ended && v.readyState >= 3 && this.stallStartedAt === null) {
        const dt = (now - this.lastTick) / 1000;
        this.playedS += dt;
        this.bitrateSeconds += this.currentBitrate() * dt;
      }
      this.lastTick = now;
      if (this.opts.onStats) this.opts.onStats(this.stats());
    }

    stats() {
      const stalled = this.stallStartedAt === null ? 0 : (performance.now() - this.stallStartedAt) / 1000;
      return {
        sessionId: this.id,
        format: this.format,
        height: this.video.videoHeight,
        width: this.video.videoWidth,
        bitrate: this.currentBitrate(),
        bufferS: bufferedAhead(this.video),
        position: this.video.currentTime,
        startupMs: this.startupMs,
        rebufferCount: this.rebufferCount,
        rebufferS: this.rebufferS + stalled,
        switches: this.switches,
        avgBitrate: this.playedS > 0 ? this.bitrateSeconds / this.playedS : 0,
        playedS: this.playedS,
        fatal: this.fatal,
      };
    }

    // ------------------------------------------------------------ reports

    heartbeat() {
      if (this.closed || this.startupMs === null || !this.opts.onHeartbeat) return;
      const duration = Math.round(this.opts.durationS || this.video.duration || 0);
      if (duration <= 0) return;
      const position = Math.min(duration, Math.round(this.video.currentTime));
      this.opts.onHeartbeat({ event_id: newId(), title_id: this.opts.contentId, position_s: position, duration_s: duration, device: "web" });
    }

    /** The session's totals so far; the server keeps the latest report of each session id. */
    beacon(final) {
      if (!this.opts.onBeacon) return;
      const s = this.stats();
      this.opts.onBeacon(
        {
          session_id: this.id,
          report_seq: this.reportSeq++,
          title_id: this.opts.contentId,
          format: this.format,
          device: "web",
          edge: this.opts.edge || null,
          startup_ms: s.startupMs,
          played_s: Math.round(s.playedS * 1000) / 1000,
          rebuffer_count: s.rebufferCount,
          rebuffer_s: Math.round(s.rebufferS * 1000) / 1000,
          bitrate_switches: s.switches,
          avg_bitrate_kbps: Math.round(s.avgBitrate / 1000),
          fatal_error: this.fatal,
          ended: Boolean(final || this.video.ended || this.fatal),
        },
        final,
      );
    }

    fail(code, message) {
      if (this.fatal) return;
      this.fatal = code;
      this.endStall();
      if (this.opts.onError) this.opts.onError(message, code);
      this.beacon(true);
      this.teardownEngine();
    }

    teardownEngine() {
      if (this.hls) {
        this.hls.destroy();
        this.hls = null;
      }
      if (this.dash) {
        this.dash.reset();
        this.dash = null;
      }
    }

    /** Stop: report the final totals and free the engine (a new Play, Back, or leaving the page). */
    close() {
      if (this.closed) return;
      this.heartbeat();
      this.beacon(true);
      this.closed = true;
      for (const t of this.timers) clearInterval(t);
      for (const [target, name, fn] of this.listeners) target.removeEventListener(name, fn);
      this.teardownEngine();
      this.video.removeAttribute("src");
      this.video.load();
      URL.revokeObjectURL(this.blobUrl);
    }
  }

  window.MarqueePlayer = { Session, bufferedAhead };
})();
