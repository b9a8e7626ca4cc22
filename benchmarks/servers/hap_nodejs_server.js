#!/usr/bin/env node
// Benchmark reference server: HAP-NodeJS 1.2.0 serving the common benchmark accessory.
//
// Usage: node hap_nodejs_server.js PORT STATE_DIR
//   hap-nodejs is resolved from NODE_PATH if set, else from tests/interop/node/node_modules
//   (where tests/interop/node/package.json pins hap-nodejs 1.2.0).
//
// Contract shared by every server script in this directory (hap_bench.py relies on it):
//   * listens on 127.0.0.1:PORT only, setup code 031-45-154, unpaired at start (STATE_DIR is fresh);
//   * prints "LISTENING 127.0.0.1:PORT" on stdout once the socket accepts connections;
//   * exits on SIGTERM;
//   * no mDNS: the advertiser class HAP-NodeJS would construct is swapped for one that does nothing,
//     so ciao never opens a multicast socket (the harness pairs by address, never by discovery).
//
// Why two patches instead of options: publish({bind: "127.0.0.1"}) only restricts the *advertised*
// address; Accessory.parseBindOption() still maps any IPv4 address to a 0.0.0.0 listener. We replace
// that static method so the TCP server itself listens on loopback only. There is no "advertiser: none"
// option, so the default ("ciao") class is replaced on the module object that publish() reads at call
// time. The per-connection internal HTTP proxy HAP-NodeJS uses already binds to loopback.
//
// The accessory database (aid 1, 9 services, 22 characteristics; iids are whatever HAP-NodeJS assigns,
// the harness discovers them by type):
//   AccessoryInformation (3E)              Identify, Manufacturer, Model, Name, SerialNumber, FirmwareRevision
//   ProtocolInformation (A2)               Version        (added by HAP-NodeJS itself at publish)
//   Lightbulb (43) "Light"                 On, Brightness, Hue, Saturation, Name
//   Switch (49) "Trigger"                  On, Name
//   StatelessProgrammableSwitch (89) "Button"  ProgrammableSwitchEvent, Name
//   MotionSensor (85)                      MotionDetected, StatusActive
//   TemperatureSensor (8A)                 CurrentTemperature
//   HumiditySensor (82)                    CurrentRelativeHumidity
//   Fan (40)                               On, RotationSpeed
//
// Semantics the harness measures:
//   * writing On=true to the Trigger switch fires ProgrammableSwitchEvent = 0 (single press) on the
//     Button: an immediate event (HAP-NodeJS flushes it at once, never coalesces it);
//   * writing Lightbulb Brightness from one session produces ordinary events, which HAP-NodeJS batches
//     per connection for up to 250 ms, to every *other* session subscribed to Brightness.
"use strict";

const path = require("path");
const { EventEmitter } = require("events");

const port = Number(process.argv[2]);
const stateDir = process.argv[3];
if (!Number.isInteger(port) || port <= 0 || !stateDir) {
  process.stderr.write("usage: node hap_nodejs_server.js PORT STATE_DIR\n");
  process.exit(2);
}
const HOST = "127.0.0.1";

function load(name) {
  // Prefer NODE_PATH / normal resolution; fall back to the repo's pinned interop install.
  try {
    return require(name);
  } catch (err) {
    if (err.code !== "MODULE_NOT_FOUND") throw err;
    const repoModules = path.resolve(__dirname, "..", "..", "tests", "interop", "node", "node_modules");
    return require(path.join(repoModules, name));
  }
}

const hap = load("hap-nodejs");
const advertiserModule = load("hap-nodejs/dist/lib/Advertiser");
const { Accessory, Categories, Characteristic, Service, HAPStorage, uuid } = hap;

// No-op advertiser: same surface Accessory.publish()/onListening()/unpublish() use.
class SilentAdvertiser extends EventEmitter {
  static protocolVersionService = advertiserModule.CiaoAdvertiser.protocolVersionService;
  constructor(accessoryInfo) {
    super();
    this.accessoryInfo = accessoryInfo;
  }
  initPort() {}
  async startAdvertising() {}
  updateAdvertisement() {}
  async destroy() {}
}
advertiserModule.CiaoAdvertiser = SilentAdvertiser;

const originalParseBind = Accessory.parseBindOption;
Accessory.parseBindOption = function loopbackOnly(info) {
  return { ...originalParseBind.call(this, info), serverAddress: HOST };
};

HAPStorage.setCustomStoragePath(stateDir);

const acc = new Accessory("Bench Accessory", uuid.generate("hksv-sidecar:bench-accessory"));
acc.getService(Service.AccessoryInformation)
  .setCharacteristic(Characteristic.Manufacturer, "hksv-sidecar bench")
  .setCharacteristic(Characteristic.Model, "HAP-NodeJS")
  .setCharacteristic(Characteristic.SerialNumber, "B-0001")
  .setCharacteristic(Characteristic.FirmwareRevision, "1.0.0");

const light = acc.addService(Service.Lightbulb, "Light");
light.getCharacteristic(Characteristic.Brightness).updateValue(0);
light.getCharacteristic(Characteristic.Hue);
light.getCharacteristic(Characteristic.Saturation);

const button = acc.addService(Service.StatelessProgrammableSwitch, "Button");
const press = button.getCharacteristic(Characteristic.ProgrammableSwitchEvent);

const trigger = acc.addService(Service.Switch, "Trigger");
trigger.getCharacteristic(Characteristic.On).onSet((value) => {
  // The Trigger is a momentary input: every write of true is one press, changed or not.
  if (value) press.sendEventNotification(Characteristic.ProgrammableSwitchEvent.SINGLE_PRESS);
});

const motion = acc.addService(Service.MotionSensor);
motion.getCharacteristic(Characteristic.StatusActive).updateValue(true);
acc.addService(Service.TemperatureSensor).getCharacteristic(Characteristic.CurrentTemperature).updateValue(21.5);
acc.addService(Service.HumiditySensor).getCharacteristic(Characteristic.CurrentRelativeHumidity).updateValue(45);
acc.addService(Service.Fan).getCharacteristic(Characteristic.RotationSpeed);

acc.on("listening", (boundPort) => {
  process.stdout.write(`LISTENING ${HOST}:${boundPort}\n`);
});
acc.publish({
  username: "AA:BB:CC:DD:EE:03",
  pincode: "031-45-154",
  category: Categories.OTHER,
  port,
  addIdentifyingMaterial: false,
}).catch((err) => {
  process.stderr.write(`publish failed: ${err && err.stack}\n`);
  process.exit(1);
});

// Exit directly: a graceful unpublish() is not needed (state is throwaway) and can hang on open sockets.
process.on("SIGTERM", () => process.exit(0));
process.on("SIGINT", () => process.exit(0));
