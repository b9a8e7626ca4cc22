// One hksv-sidecar child process speaking the --stdio-json protocol (docs/child-process.md):
// commands as JSON lines on its stdin, events as JSON lines on its stdout, logs as JSON lines
// on its stderr. Restarts the child RESTART_DELAY_MS after it dies, until stop() is called.
"use strict";
const { spawn } = require("node:child_process");
const { EventEmitter } = require("node:events");

const RESTART_DELAY_MS = 7000; // what Homebridge itself waits before restarting a child bridge
const TERM_AFTER_MS = 3000; // "shutdown" normally ends the sidecar well within this
const KILL_AFTER_MS = 4500; // before Homebridge's own forced exit, 5 s after its SIGTERM
const MAX_LINE = 1 << 20;
const EXIT_USAGE = 2;

// Splits a byte stream into lines, holding at most MAX_LINE bytes of an unfinished line.
class LineSplitter {
  constructor(onLine) {
    this.onLine = onLine;
    this.buf = "";
  }

  push(chunk) {
    this.buf += chunk;
    let nl;
    while ((nl = this.buf.indexOf("\n")) >= 0) {
      const line = this.buf.slice(0, nl).replace(/\r$/, "");
      this.buf = this.buf.slice(nl + 1);
      if (line.trim()) this.onLine(line);
    }
    if (this.buf.length > MAX_LINE) this.buf = "";
  }

  end() {
    if (this.buf.trim()) this.onLine(this.buf);
    this.buf = "";
  }
}

// Events: "event" (envelope from the sidecar), "log" ({level, message, camera?}),
// "spawn" (pid), "exit" ({code, signal, restartIn}).
class SidecarChild extends EventEmitter {
  constructor({ command, args = [], env = process.env, buildConfig }) {
    super();
    this.command = command;
    this.args = args;
    this.env = env;
    this.buildConfig = buildConfig; // () => the sidecar's config object, sent on each (re)start
    this.proc = null;
    this.stopping = false;
    this.restartTimer = null;
    this.seq = 0;
  }

  start() {
    this.stopping = false;
    this._spawn();
  }

  _spawn() {
    this.restartTimer = null;
    const argv = [...this.args, "--stdio-json", "--log-format", "json"];
    let proc;
    try {
      proc = spawn(this.command, argv, { stdio: ["pipe", "pipe", "pipe"], env: this.env });
    } catch (err) {
      this._exited(null, null, err);
      return;
    }
    this.proc = proc;
    let ended = false;
    const done = (code, signal, err) => {
      if (ended) return;
      ended = true;
      this._exited(code, signal, err);
    };
    proc.on("error", (err) => done(null, null, err));
    proc.on("exit", (code, signal) => done(code, signal, null));
    proc.stdin.on("error", () => {}); // EPIPE when the child died first; "exit" reports it
    const events = new LineSplitter((line) => this._onEventLine(line));
    const logs = new LineSplitter((line) => this._onLogLine(line));
    proc.stdout.setEncoding("utf8");
    proc.stderr.setEncoding("utf8");
    proc.stdout.on("data", (d) => events.push(d));
    proc.stdout.on("end", () => events.end());
    proc.stderr.on("data", (d) => logs.push(d));
    proc.stderr.on("end", () => logs.end());
    if (proc.pid) this.emit("spawn", proc.pid);
  }

  _exited(code, signal, err) {
    this.proc = null;
    // Exit code 2 is a usage error (docs/child-process.md): the same command would fail again.
    const restartIn = this.stopping || code === EXIT_USAGE ? null : RESTART_DELAY_MS;
    this.emit("exit", { code, signal, error: err ? String(err.message || err) : null, restartIn });
    if (restartIn !== null) this.restartTimer = setTimeout(() => this._spawn(), restartIn);
  }

  _onEventLine(line) {
    let msg;
    try {
      msg = JSON.parse(line);
    } catch {
      this.emit("log", { level: "warn", message: `unexpected output: ${line.slice(0, 200)}` });
      return;
    }
    if (!msg || typeof msg.id !== "string") return;
    if (msg.id === "ready") {
      this.send("config", this.buildConfig());
      this.send("start");
    }
    this.emit("event", msg);
  }

  _onLogLine(line) {
    let entry;
    try {
      entry = JSON.parse(line);
    } catch {
      entry = null;
    }
    if (entry && typeof entry.message === "string") {
      this.emit("log", { level: entry.level || "info", message: entry.message, camera: entry.camera,
        exception: entry.exception });
    } else {
      this.emit("log", { level: "error", message: line }); // e.g. a usage error before JSON logging
    }
  }

  send(id, data = {}) {
    if (!this.proc || !this.proc.stdin.writable) return null;
    const seq = ++this.seq;
    this.proc.stdin.write(JSON.stringify({ id, data, seq }) + "\n");
    return seq;
  }

  // Stop for good (Homebridge is shutting down): no restart. The sidecar stops on "shutdown" or
  // on EOF; SIGTERM if it has not exited after TERM_AFTER_MS, SIGKILL after KILL_AFTER_MS.
  stop() {
    this.stopping = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = null;
    const proc = this.proc;
    if (!proc) return;
    this.send("shutdown");
    proc.stdin.end();
    const term = setTimeout(() => proc.kill("SIGTERM"), TERM_AFTER_MS);
    const kill = setTimeout(() => proc.kill("SIGKILL"), KILL_AFTER_MS);
    term.unref();
    kill.unref();
    proc.once("exit", () => { clearTimeout(term); clearTimeout(kill); });
  }
}

module.exports = { SidecarChild, LineSplitter, RESTART_DELAY_MS };
