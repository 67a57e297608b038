// Prints the C++ sources of the addon for binding.gyp: every native/*.cc
// (kernel labs under native/lab/ are separate programs and not listed).
const fs = require('fs');
const path = require('path');
const dir = __dirname;
console.log(fs.readdirSync(dir).filter((f) => f.endsWith('.cc')).sort().map((f) => 'native/' + f).join(' '));
