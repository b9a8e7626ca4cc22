// Prints HAP-NodeJS's setup URI for each [pincode, category, setupID] given as JSON in argv[2].
"use strict";
const { Accessory, uuid } = require("hap-nodejs");
const cases = JSON.parse(process.argv[2]);
const out = cases.map(([pincode, category, setupID]) => {
  const acc = new Accessory("x", uuid.generate("x" + pincode + category));
  acc._accessoryInfo = { pincode, category };
  acc._setupID = setupID;
  return acc.setupURI();
});
process.stdout.write(JSON.stringify(out));
