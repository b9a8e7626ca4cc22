// homebridge-hksv-sidecar: a dynamic platform that runs hksv-sidecar as a child process.
//
// The cameras are NOT Homebridge accessories: each one is a standalone HomeKit accessory with
// its own HAP server, served by the sidecar (a bridge would serialise every camera's requests
// behind the slowest one). This plugin starts the sidecar, hands it the config, shows each
// camera's setup code and QR code in the Homebridge log, and can put one "motion" switch per
// camera on Homebridge's bridge, so automations and other plugins can trigger recordings.
"use strict";
const path = require("node:path");
const qrcode = require("qrcode-terminal");
const { SidecarChild } = require("./lib/sidecar-child");

const PLUGIN_NAME = "homebridge-hksv-sidecar";
const PLATFORM_NAME = "HksvSidecar";

// Homebridge-style (camelCase) setting -> the sidecar's YAML/CLI key. Unknown keys are passed
// through untouched, so every documented sidecar setting also works in config.json, and the
// sidecar validates them with its own messages.
const TOP_KEYS = { stateDir: "state_dir", bind: "bind", mdns: "mdns", mdnsInterfaces: "mdns_interfaces",
  hapBasePort: "hap_base_port", logLevel: "log_level", triggerHttpPort: "trigger_http_port" };
const CAMERA_KEYS = { setupCode: "setup_code", hapPort: "hap_port", motionTimeout: "motion_timeout_s",
  prebufferMs: "prebuffer_ms", maxEventSeconds: "max_event_s", snapshotUrl: "snapshot_url",
  transcodeFallback: "transcode_fallback", maxLiveStreams: "max_live_streams" };
const PLUGIN_ONLY = new Set(["motionSwitch"]);
const LEVELS = { debug: "debug", info: "info", warning: "warn", warn: "warn", error: "error", critical: "error" };

function sidecarConfig(config, defaultStateDir) {
  const out = { state_dir: defaultStateDir };
  for (const [key, value] of Object.entries(config)) {
    if (TOP_KEYS[key] && value !== undefined && value !== "") out[TOP_KEYS[key]] = value;
  }
  out.cameras = (config.cameras || []).map((cam) => {
    const c = {};
    for (const [key, value] of Object.entries(cam)) {
      if (PLUGIN_ONLY.has(key) || value === undefined || value === "") continue;
      c[CAMERA_KEYS[key] || key] = value;
    }
    return c;
  });
  return out;
}

class HksvSidecarPlatform {
  constructor(log, config, api) {
    this.log = log;
    this.config = config || {};
    this.api = api;
    this.cached = new Map(); // UUID -> PlatformAccessory restored from Homebridge's cache
    this.switches = new Map(); // camera name -> Switch service
    this.shown = new Map(); // camera name -> the setup URI last shown (to show it once)
    this.child = null;
    api.on("didFinishLaunching", () => this.launch());
    api.on("shutdown", () => this.shutdown());
  }

  configureAccessory(accessory) {
    this.cached.set(accessory.UUID, accessory);
  }

  launch() {
    const cameras = this.config.cameras || [];
    if (!cameras.length) {
      this.log.warn("no cameras configured; add cameras to the HksvSidecar platform");
      return;
    }
    this.syncSwitches(cameras);
    const stateDir = path.join(this.api.user.storagePath(), "hksv-sidecar");
    this.child = new SidecarChild({
      command: this.config.command || "hksv-sidecar",
      args: this.config.args || [],
      buildConfig: () => sidecarConfig(this.config, stateDir),
    });
    this.child.on("spawn", (pid) => this.log.info(`hksv-sidecar started (pid ${pid})`));
    this.child.on("exit", (e) => this.onExit(e));
    this.child.on("log", (entry) => this.onLog(entry));
    this.child.on("event", (msg) => this.onEvent(msg));
    this.child.start();
  }

  shutdown() {
    if (this.child) this.child.stop();
  }

  // -- the optional motion switches on Homebridge's bridge ----------------------------------
  syncSwitches(cameras) {
    const { Service, Characteristic, uuid } = this.api.hap;
    const wanted = new Set();
    const added = [];
    for (const cam of cameras) {
      if (!cam.motionSwitch || !cam.name) continue;
      const id = uuid.generate(`hksv-sidecar:motion-switch:${cam.name}`);
      wanted.add(id);
      let acc = this.cached.get(id);
      if (!acc) {
        acc = new this.api.platformAccessory(`${cam.name} Motion`, id);
        acc.context.camera = cam.name;
        added.push(acc);
        this.cached.set(id, acc);
      }
      const svc = acc.getService(Service.Switch) || acc.addService(Service.Switch, `${cam.name} Motion`);
      svc.getCharacteristic(Characteristic.On)
        .onGet(() => Boolean(svc.getCharacteristic(Characteristic.On).value))
        .onSet((value) => {
          if (!this.child || this.child.send("motion", { camera: cam.name, active: Boolean(value) }) === null) {
            throw new this.api.hap.HapStatusError(this.api.hap.HAPStatus.SERVICE_COMMUNICATION_FAILURE);
          }
        });
      this.switches.set(cam.name, svc);
    }
    if (added.length) this.api.registerPlatformAccessories(PLUGIN_NAME, PLATFORM_NAME, added);
    const stale = [...this.cached.values()].filter((acc) => !wanted.has(acc.UUID));
    if (stale.length) {
      this.api.unregisterPlatformAccessories(PLUGIN_NAME, PLATFORM_NAME, stale);
      for (const acc of stale) this.cached.delete(acc.UUID);
    }
  }

  // -- what the sidecar says ----------------------------------------------------------------
  onLog({ level, message, camera, exception }) {
    const fn = LEVELS[level] || "info";
    const text = camera ? `[${camera}] ${message}` : message;
    this.log[fn](exception ? `${text}\n${exception}` : text);
  }

  onExit({ code, signal, error, restartIn }) {
    this.shown.clear();
    const how = error ? `could not run "${this.config.command || "hksv-sidecar"}": ${error}`
      : `exited (${signal ? `signal ${signal}` : `code ${code}`})`;
    if (restartIn === null && code === 2) {
      this.log.error(`hksv-sidecar ${how}: it refused its command line; fix the plugin's settings and restart Homebridge`);
    } else if (restartIn === null) this.log.info(`hksv-sidecar ${how}`);
    else this.log.error(`hksv-sidecar ${how}; restarting in ${restartIn / 1000} s`);
  }

  onEvent(msg) {
    const d = msg.data || {};
    switch (msg.id) {
      case "ready":
        this.log.info(`hksv-sidecar ${d.version} ready (protocol ${d.protocol})`);
        break;
      case "status":
        this.showStatus(d);
        break;
      case "camera":
        if (d.state === "error") this.log.error(`[${d.camera}] ${d.error || "error"}`);
        else this.log.debug(`[${d.camera}] ${d.state}`);
        break;
      case "motion": {
        const svc = this.switches.get(d.camera);
        if (svc) svc.updateCharacteristic(this.api.hap.Characteristic.On, Boolean(d.active));
        break;
      }
      case "recording":
        if (d.state === "end") {
          this.log.info(`[${d.camera}] recording ${d.streamId} ended (${d.reason}, ${d.bytes} bytes)`);
        } else this.log.info(`[${d.camera}] recording ${d.streamId} started`);
        break;
      case "ffmpeg":
        this.log.warn(`[${d.camera}] ffmpeg exited (code ${d.exitCode})` +
          (d.restartIn == null ? "" : `; restarting in ${d.restartIn} s`));
        break;
      case "error":
        this.log.error(`hksv-sidecar: ${d.message}`);
        break;
      default:
        break;
    }
  }

  // The setup code and QR code, laid out the way Homebridge shows its own bridge's.
  showStatus({ camera, paired, setupUri, setupCode, port }) {
    const key = paired ? "paired" : setupUri;
    if (this.shown.get(camera) === key) return;
    this.shown.set(camera, key);
    if (paired) {
      this.log.info(`[${camera}] paired with HomeKit (HAP port ${port})`);
      return;
    }
    const say = (line) => this.log.info(`[${camera}] ${line}`);
    say(`Setup Payload: ${setupUri}`);
    say(`Scan this code with the Home app to add the camera "${camera}" (HAP port ${port}):`);
    qrcode.setErrorLevel("M");
    qrcode.generate(setupUri, { small: true }, (qr) => {
      for (const line of qr.split("\n")) if (line) say(line);
    });
    say("Or enter this code in the Home app:");
    const box = "─".repeat(setupCode.length + 2);
    say(`┌${box}┐`);
    say(`│ ${setupCode} │`);
    say(`└${box}┘`);
  }
}

module.exports = (api) => {
  api.registerPlatform(PLUGIN_NAME, PLATFORM_NAME, HksvSidecarPlatform);
};
module.exports.HksvSidecarPlatform = HksvSidecarPlatform;
module.exports.sidecarConfig = sidecarConfig;
// The settings the plugin reads itself (config.schema.json must offer each of them).
module.exports.SETTINGS = {
  platform: ["name", "command", "args", "cameras", ...Object.keys(TOP_KEYS)],
  camera: ["name", "source", "profile", "doorbell", ...Object.keys(CAMERA_KEYS), ...PLUGIN_ONLY],
};
