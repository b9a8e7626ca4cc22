// The plugin against Homebridge's own plugin API class (from the pinned homebridge package),
// without a bridge: bad settings a user can make, and the config translation. The full run
// under real Homebridge is tests/interop/test_homebridge_plugin.py.
// HKSV_SIDECAR: the hksv-sidecar program to run (the test suite passes its virtualenv's).
"use strict";
const test = require("node:test");
const assert = require("node:assert");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { HomebridgeAPI } = require("homebridge/lib/api");
const { User } = require("homebridge/lib/user");
const plugin = require("..");
const { LineSplitter } = require("../lib/sidecar-child");

const SIDECAR = process.env.HKSV_SIDECAR || "hksv-sidecar";

function recorder() {
  const lines = [];
  const waiters = new Set();
  const log = (level) => (msg) => {
    lines.push({ level, msg: String(msg) });
    for (const w of [...waiters]) w();
  };
  const logger = Object.assign(log("info"), { info: log("info"), warn: log("warn"), error: log("error"),
    debug: log("debug"), success: log("info"), log: (level, msg) => log(level)(msg) });
  logger.lines = lines;
  logger.waitFor = (re, ms = 30000) => new Promise((resolve, reject) => {
    const check = () => {
      const hit = lines.find((l) => re.test(l.msg));
      if (hit) { waiters.delete(check); clearTimeout(timer); resolve(hit); }
    };
    const timer = setTimeout(() => {
      waiters.delete(check);
      reject(new Error(`no log line ${re}; got:\n${lines.map((l) => `${l.level}: ${l.msg}`).join("\n")}`));
    }, ms);
    waiters.add(check);
    check();
  });
  return logger;
}

const storage = fs.mkdtempSync(path.join(os.tmpdir(), "hksv-hb-"));
User.setStoragePath(storage); // once per process: Homebridge refuses to change it later
test.after(() => fs.rmSync(storage, { recursive: true, force: true }));

function platform(config) {
  const api = new HomebridgeAPI();
  let registered;
  api.on("registerPlatform", (...args) => { registered = args; });
  plugin(api);
  const log = recorder();
  const p = new plugin.HksvSidecarPlatform(log, { platform: "HksvSidecar", ...config }, api);
  return { api, log, p, registered, cleanup: () => {} };
}

test("a missing hksv-sidecar program is named, retried in 7 s, and not retried after shutdown", async () => {
  const { api, log, cleanup } = platform({ command: "/nonexistent/hksv-sidecar",
    cameras: [{ name: "Front", source: "demo" }] });
  try {
    api.signalFinished();
    const line = await log.waitFor(/could not run/);
    assert.strictEqual(line.level, "error");
    assert.match(line.msg, /could not run "\/nonexistent\/hksv-sidecar": .*ENOENT.*; restarting in 7 s/);
  } finally {
    api.signalShutdown(); // clears the restart timer: this test would otherwise hang for 7 s
    cleanup();
  }
});

test("a bad camera setting comes back with the sidecar's own message; shutdown stops the child", async () => {
  const { api, log, cleanup } = platform({ command: SIDECAR, bind: "127.0.0.1", mdns: false,
    cameras: [{ name: "Front", source: "demo", setupCode: "123" }] });
  try {
    api.signalFinished();
    const line = await log.waitFor(/hksv-sidecar: config:/);
    assert.strictEqual(line.level, "error");
    assert.match(line.msg, /hksv-sidecar: config: cameras\.0\.setup_code: .*must look like 123-45-678/);
    api.signalShutdown();
    const exit = await log.waitFor(/hksv-sidecar exited/);
    assert.match(exit.msg, /exited \(code 0\)$/);
    assert.ok(!log.lines.some((l) => /restarting/.test(l.msg)));
  } finally {
    api.signalShutdown();
    cleanup();
  }
});

test("a command line the sidecar refuses (exit 2) is reported and not retried", async () => {
  const { api, log } = platform({ command: SIDECAR, args: ["--demo"], cameras: [{ name: "Front", source: "demo" }] });
  try {
    api.signalFinished();
    await log.waitFor(/--stdio-json takes its cameras from the parent's config command/);
    const exit = await log.waitFor(/hksv-sidecar exited/);
    assert.strictEqual(exit.level, "error");
    assert.match(exit.msg, /exited \(code 2\): it refused its command line; fix the plugin's settings/);
    assert.ok(!log.lines.some((l) => /restarting/.test(l.msg)));
  } finally {
    api.signalShutdown();
  }
});

test("no cameras: a warning, and no child", () => {
  const { api, log, p, registered, cleanup } = platform({});
  try {
    assert.strictEqual(registered[0], "HksvSidecar"); // the platform name config.json refers to
    api.signalFinished();
    assert.match(log.lines.map((l) => l.msg).join("\n"), /no cameras configured/);
    assert.strictEqual(p.child, null);
  } finally {
    api.signalShutdown();
    cleanup();
  }
});

test("config.json settings become the sidecar's YAML keys; plugin-only keys stay behind", () => {
  const out = plugin.sidecarConfig({
    platform: "HksvSidecar", name: "HKSV", command: "x", bind: "127.0.0.1", mdns: false, hapBasePort: 51000,
    logLevel: "DEBUG", _bridge: { username: "0E:00:00:00:00:01" },
    cameras: [{ name: "Front", source: "rtsp://u:p@cam/1", setupCode: "031-45-154", motionSwitch: true,
      motionTimeout: 10, doorbell: true, prebuffer_ms: 6000, snapshotUrl: "" }],
  }, "/var/lib/hb/hksv-sidecar");
  assert.deepStrictEqual(out, {
    state_dir: "/var/lib/hb/hksv-sidecar", bind: "127.0.0.1", mdns: false, hap_base_port: 51000, log_level: "DEBUG",
    cameras: [{ name: "Front", source: "rtsp://u:p@cam/1", setup_code: "031-45-154", motion_timeout_s: 10,
      doorbell: true, prebuffer_ms: 6000 }],
  });
});

test("config.schema.json (the settings form) offers every setting the plugin reads, and no other", () => {
  const schema = JSON.parse(fs.readFileSync(path.join(__dirname, "..", "config.schema.json"), "utf8"));
  const top = schema.schema.properties;
  assert.strictEqual(schema.pluginAlias, "HksvSidecar");
  assert.strictEqual(schema.pluginType, "platform");
  assert.deepStrictEqual(Object.keys(top).sort(), [...plugin.SETTINGS.platform].sort());
  assert.deepStrictEqual(Object.keys(top.cameras.items.properties).sort(), [...plugin.SETTINGS.camera].sort());
});

test("the line splitter drops an over-long line and keeps going", () => {
  const got = [];
  const s = new LineSplitter((l) => got.push(l));
  s.push("x".repeat((1 << 20) + 10));
  s.push("tail\n{\"id\":\"bye\"}\r\n");
  s.push("{\"id\":\"pong\"}");
  s.end();
  assert.deepStrictEqual(got, ["tail", "{\"id\":\"bye\"}", "{\"id\":\"pong\"}"]);
});
