// The npm side of bench/hl7-parse: hl7-standard on the same messages, one core.
//   node hl7_parse_npm.js SECONDS MIX.json
const HL7 = require('hl7-standard');
const fs = require('fs');
const secs = parseFloat(process.argv[2]);
const msgs = JSON.parse(fs.readFileSync(process.argv[3], 'utf8'));
const sizes = msgs.map((m) => Buffer.byteLength(m));
let done = 0, bytes = 0;
const t0 = process.hrtime.bigint();
let t = 0;
do {
	for (let i = 0; i < msgs.length; i++) {
		const h = new HL7(msgs[i]);
		h.transform();
		bytes += sizes[i];
	}
	done += msgs.length;
	t = Number(process.hrtime.bigint() - t0) / 1e9;
} while (t < secs);
console.log(`hl7-standard ${require('hl7-standard/package.json').version}: ${(bytes / 1e6 / t).toFixed(1)} MB/s, ` +
	`${(done / t).toFixed(0)} messages/s (${done} messages in ${t.toFixed(2)} s, one core)`);
