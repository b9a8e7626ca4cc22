// A Node parent drives `hksv-sidecar --stdio-json` over Node's own IPC channel: spawn with an
// "ipc" stdio entry (what child_process.fork does), cp.send() / cp.on("message"). The hub is
// hap-controller (an independent Node HomeKit controller). Run by tests/control/test_node_ipc.py.
"use strict";
const test = require("node:test");
const assert = require("node:assert");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { spawn } = require("node:child_process");

const REPO = path.resolve(__dirname, "../../..");
const { HttpClient, PairMethods } = require(path.join(REPO, "tests/interop/node/node_modules/hap-controller"));
const PYTHON = process.env.HKSV_PYTHON || "python3";
const PIN = "031-45-154";
const HAP = (short) => `${short.padStart(8, "0")}-0000-1000-8000-0026BB765291`;

class Child {
  constructor(stateDir) {
    this.cp = spawn(PYTHON, ["-m", "sidecar", "--stdio-json", "--state-dir", stateDir],
      { cwd: REPO, stdio: ["pipe", "pipe", "pipe", "ipc"] });
    this.events = [];
    this.stdout = "";
    this.stderr = "";
    this.waiters = new Set();
    this.exited = new Promise((resolve) => this.cp.on("exit", (code, signal) => resolve({ code, signal })));
    this.cp.stdout.on("data", (d) => { this.stdout += d; });
    this.cp.stderr.on("data", (d) => { this.stderr += d; });
    this.cp.on("message", (msg) => {
      this.events.push(msg);
      for (const w of [...this.waiters]) w();
    });
  }

  waitFor(pred, ms = 30000, from = 0) {
    return new Promise((resolve, reject) => {
      const check = () => {
        const hit = this.events.slice(from).find(pred);
        if (hit) { this.waiters.delete(check); clearTimeout(timer); resolve(hit); }
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`timed out; events: ${JSON.stringify(this.events)}\n${this.stderr.slice(-3000)}`));
      }, ms);
      this.waiters.add(check);
      check();
    });
  }

  reply(seq, ms) {
    return this.waitFor((e) => e.seq === seq && ["ok", "pong", "error", "bye"].includes(e.id), ms);
  }
}

function within(promise, ms, what) {
  let timer;
  const late = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(what)), ms); });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

function decodeSetupUri(uri) {
  assert.match(uri, /^X-HM:\/\/[0-9A-Z]{9}[0-9A-Z]{4}$/);
  const payload = parseInt(uri.slice(7, 16), 36); // < 2^45: exact in a double
  const code = String(payload % 2 ** 27).padStart(8, "0");
  return {
    code: `${code.slice(0, 3)}-${code.slice(3, 5)}-${code.slice(5)}`,
    flags: Math.floor(payload / 2 ** 27) % 16,
    category: Math.floor(payload / 2 ** 31) % 256,
  };
}

function descendants(pid) {
  const out = [];
  for (const task of fs.readdirSync(`/proc/${pid}/task`)) {
    let children = "";
    try { children = fs.readFileSync(`/proc/${pid}/task/${task}/children`, "utf8"); } catch { continue; }
    for (const c of children.split(" ").filter(Boolean).map(Number)) out.push(c, ...descendants(c));
  }
  return out;
}

function alive(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch { return false; }
}

test("a fork-style parent configures, pairs, raises motion and disconnects", { timeout: 120000 }, async () => {
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), "hksv-ipc-"));
  const child = new Child(stateDir);
  let hub;
  try {
    const ready = await child.waitFor((e) => e.id === "ready");
    assert.deepStrictEqual(ready.data, { version: ready.data.version, pid: child.cp.pid, protocol: 1 });
    child.cp.stdin.end(); // in IPC mode stdin is not the channel: closing it changes nothing

    child.cp.send("not an object");
    child.cp.send({ id: "reboot", seq: 1 });
    assert.match((await child.reply(1)).data.message, /unknown command 'reboot'/);
    const errors = child.events.filter((e) => e.id === "error");
    assert.strictEqual(errors.length, 2);
    assert.match(errors[0].data.message, /expected an object/);

    child.cp.send({ id: "config", seq: 2, data: { bind: "127.0.0.1", mdns: false, cameras: [
      { name: "Node Camera", source: "demo", profile: "libx264", setup_code: PIN }] } });
    child.cp.send({ id: "start", seq: 3 });
    assert.strictEqual((await child.reply(2)).id, "ok");
    assert.deepStrictEqual((await child.reply(3, 60000)).data, { command: "start", cameras: ["Node Camera"] });
    const statuses = child.events.filter((e) => e.id === "status");
    assert.strictEqual(statuses.length, 1);
    const st = statuses[0].data;
    assert.strictEqual(st.paired, false);
    assert.deepStrictEqual(decodeSetupUri(st.setupUri), { code: PIN, flags: 2, category: 17 });

    // The hub pairs, turns recording on (ffmpeg starts) and subscribes to MotionDetected.
    const setup = new HttpClient("AA:BB:CC:DD:EE:13", "127.0.0.1", st.port);
    await setup.pairSetup(PIN, PairMethods.PairSetup);
    const longTerm = setup.getLongTermData();
    await setup.close();
    hub = new HttpClient("AA:BB:CC:DD:EE:13", "127.0.0.1", st.port, longTerm, { usePersistentConnections: true });
    const db = await hub.getAccessories();
    const iid = (svc, chr) => db.accessories[0].services.find((s) => s.type === HAP(svc))
      .characteristics.find((c) => c.type === HAP(chr)).iid;
    await hub.setCharacteristics({ [`1.${iid("21A", "21B")}`]: 1, [`1.${iid("204", "B0")}`]: 1 });
    const motionId = `1.${iid("85", "22")}`;
    const seen = [];
    const got = new Promise((resolve) => hub.on("event", (ev) => {
      for (const c of ev.characteristics) if (`${c.aid}.${c.iid}` === motionId) { seen.push(c.value); resolve(); }
    }));
    await hub.subscribeCharacteristics([motionId]);
    const mark = child.events.length;
    child.cp.send({ id: "motion", seq: 4, data: { camera: "Node Camera", active: true } });
    assert.strictEqual((await child.reply(4)).id, "ok");
    await within(got, 10000, "no HAP event");
    assert.deepStrictEqual(seen, [true]);
    const motion = await child.waitFor((e) => e.id === "motion", 10000, mark);
    assert.deepStrictEqual(motion.data, { camera: "Node Camera", active: true, source: "stdio" });

    // ffmpeg runs now; the parent goes away (disconnect): everything stops within 5 s.
    let ffmpegs = [];
    for (let i = 0; i < 200 && ffmpegs.length === 0; i++) {
      ffmpegs = descendants(child.cp.pid).filter((p) => {
        try { return fs.readFileSync(`/proc/${p}/comm`, "utf8").trim() === "ffmpeg"; } catch { return false; }
      });
      if (!ffmpegs.length) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(ffmpegs.length > 0, "the recording ffmpeg should be running");
    await hub.close();
    hub = undefined;
    const started = Date.now();
    child.cp.disconnect();
    const { code } = await child.exited;
    assert.ok(Date.now() - started < 5000, `took ${Date.now() - started} ms`);
    assert.strictEqual(code, 0);
    assert.deepStrictEqual(ffmpegs.filter(alive), []);
    assert.strictEqual(child.stdout, ""); // in IPC mode nothing at all goes to stdout
    assert.doesNotMatch(child.stderr, /Traceback/);
  } finally {
    if (hub) await hub.close().catch(() => {});
    if (child.cp.exitCode === null && child.cp.signalCode === null) child.cp.kill("SIGKILL");
    fs.rmSync(stateDir, { recursive: true, force: true });
  }
});
