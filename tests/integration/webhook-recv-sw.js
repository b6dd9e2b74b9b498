#!/usr/bin/env node
// A webhook receiver for tests that checks every delivery with the
// maintained Standard Webhooks library (npm "standardwebhooks"), not with
// the project's own code: plain HTTP on 127.0.0.1, one Webhook verifier per
// --secret, one JSON line per request to --log:
//   {"id", "timestamp", "signature", "body", "valid": [bool per --secret],
//    "answer"}
// It answers 204 when any verifier accepts the delivery, 401 when none does,
// or what the first line of --mode-file that applies says: "CODE [ID]"
// (a line without an ID applies to every request; an absent or empty file:
// verify and answer as above).
//
//   node webhook-recv-sw.js --secret whsec_... [--secret whsec_...]
//       --log FILE --port-file FILE [--mode-file FILE]
//
// NODE_PATH (or a node_modules beside it) must hold standardwebhooks.
'use strict';

const fs = require('node:fs');
const http = require('node:http');
const { Webhook } = require('standardwebhooks');

const BODY_MAX = 1024 * 1024;

function usage(why) {
	process.stderr.write(`webhook-recv-sw.js: ${why}\n`);
	process.exit(64);
}

function parseArgs(argv) {
	const a = { secrets: [], log: null, portFile: null, modeFile: null };

	for (let i = 0; i < argv.length; i++) {
		const v = argv[i + 1];
		switch (argv[i]) {
		case '--secret': a.secrets.push(v); i++; break;
		case '--log': a.log = v; i++; break;
		case '--port-file': a.portFile = v; i++; break;
		case '--mode-file': a.modeFile = v; i++; break;
		default: usage(`unknown argument ${argv[i]}`);
		}
		if (v === undefined)
			usage(`${argv[i]} needs a value`);
	}
	if (a.secrets.length === 0 || !a.log || !a.portFile)
		usage('--secret, --log and --port-file are required');
	return a;
}

// The answer the mode file asks for this id, or null.
function modeFor(file, id) {
	let text;

	if (!file)
		return null;
	try {
		text = fs.readFileSync(file, 'utf8');
	} catch (e) {
		if (e.code === 'ENOENT')
			return null;
		throw e;
	}
	for (const line of text.split('\n')) {
		const [code, lineId] = line.trim().split(/\s+/);
		if (!code || code === 'ok')
			continue;
		if (lineId === undefined || lineId === id)
			return Number(code);
	}
	return null;
}

const args = parseArgs(process.argv.slice(2));
const verifiers = args.secrets.map((s) => new Webhook(s));

const server = http.createServer((req, res) => {
	const chunks = [];
	let size = 0;

	req.on('data', (c) => {
		size += c.length;
		if (size > BODY_MAX)
			req.destroy();
		else
			chunks.push(c);
	});
	req.on('end', () => {
		const body = Buffer.concat(chunks).toString('utf8');
		const headers = {
			'webhook-id': req.headers['webhook-id'] || '',
			'webhook-timestamp': req.headers['webhook-timestamp'] || '',
			'webhook-signature': req.headers['webhook-signature'] || '',
		};
		// verify() throws on a bad signature or a stale timestamp
		// and returns the parsed body otherwise.
		const valid = verifiers.map((w) => {
			try {
				w.verify(body, headers);
				return true;
			} catch (e) {
				return false;
			}
		});
		let answer = modeFor(args.modeFile, headers['webhook-id']);
		if (answer === null)
			answer = valid.some((v) => v) ? 204 : 401;
		fs.appendFileSync(args.log, JSON.stringify({
			id: headers['webhook-id'],
			timestamp: headers['webhook-timestamp'],
			signature: headers['webhook-signature'],
			body,
			valid,
			answer,
		}) + '\n');
		res.writeHead(answer);
		res.end();
	});
});

server.listen(0, '127.0.0.1', () => {
	fs.writeFileSync(args.portFile + '.tmp', `${server.address().port}\n`);
	fs.renameSync(args.portFile + '.tmp', args.portFile);
});
for (const sig of ['SIGTERM', 'SIGINT'])
	process.on(sig, () => process.exit(0));
