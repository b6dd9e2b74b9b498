#!/usr/bin/env node
// A pull consumer for reconciled's events: long-polls GET /v1/events after
// the cursor it keeps in a file, processes each event in order ("grants" by
// printing), and stores the new cursor only after the batch is processed.
// Node.js 18+, no dependencies.
//
//   RECONCILED_SOCKET=/run/reconciled/control.sock \
//       CURSOR_FILE=./cursor node examples/consumer-pull.js [--once]
//   RECONCILED_URL=http://127.0.0.1:8790 RECONCILED_TOKEN=... \
//       CURSOR_FILE=./cursor node examples/consumer-pull.js [--once]
//
// The unix socket (the default under systemd) needs no token; a TCP
// listener always does.
//
// --once: take what is there now (no waiting) and exit when caught up.
'use strict';

const fs = require('node:fs');
const http = require('node:http');

const SOCKET = process.env.RECONCILED_SOCKET || '';
const BASE = new URL(process.env.RECONCILED_URL ||
    (SOCKET ? 'http://localhost' : 'http://127.0.0.1:8790'));
const TOKEN = process.env.RECONCILED_TOKEN || '';
const CURSOR_FILE = process.env.CURSOR_FILE || 'events.cursor';
const ONCE = process.argv.includes('--once');
const WAIT_S = ONCE ? 0 : 30;
const LIMIT = 100;

let stopping = false;	// a signal came: exit after the batch at hand
let busy = false;	// processing a batch (the cursor not yet stored)

function readCursor() {
	try {
		const n = Number(fs.readFileSync(CURSOR_FILE, 'utf8').trim());
		if (!Number.isSafeInteger(n) || n < 0)
			throw new Error(`${CURSOR_FILE}: not an event id`);
		return n;
	} catch (e) {
		if (e.code === 'ENOENT')
			return 0;
		throw e;
	}
}

// Written to a temporary file, synced, then renamed over the old one.
function writeCursor(n) {
	const tmp = `${CURSOR_FILE}.tmp`;
	const fd = fs.openSync(tmp, 'w');
	fs.writeSync(fd, `${n}\n`);
	fs.fsyncSync(fd);
	fs.closeSync(fd);
	fs.renameSync(tmp, CURSOR_FILE);
}

// One GET of the feed; resolves to the parsed answer.
function getEvents(after) {
	const url = new URL('/v1/events', BASE);
	url.searchParams.set('after', String(after));
	url.searchParams.set('limit', String(LIMIT));
	url.searchParams.set('wait', String(WAIT_S));
	const headers = { Accept: 'application/json' };
	if (TOKEN)
		headers.Authorization = `Bearer ${TOKEN}`;
	return new Promise((resolve, reject) => {
		const opts = { headers, timeout: (WAIT_S + 15) * 1000 };
		if (SOCKET)
			opts.socketPath = SOCKET;
		const req = http.get(url, opts,
		    (res) => {
			const chunks = [];
			res.on('data', (c) => chunks.push(c));
			res.on('end', () => {
				const text = Buffer.concat(chunks).toString('utf8');
				if (res.statusCode !== 200)
					return reject(new Error(`HTTP ${res.statusCode}: ${text.trim()}`));
				try {
					resolve(JSON.parse(text));
				} catch (e) {
					reject(new Error(`not JSON: ${e.message}`));
				}
			});
			res.on('error', reject);
		});
		req.on('timeout', () => req.destroy(new Error('timed out')));
		req.on('error', reject);
	});
}

// The business part; see consumer-webhook.js. It must be idempotent (keyed
// by ev.key or ev.orderId): after a crash between processing and storing
// the cursor, the same events come again.
// May be async (a database call): the loop awaits it.
async function processEvent(ev) {
	if (ev.type === 'grant')	// sku: Toss's when skuConfirmed
		console.log(`grant ${ev.orderId} to user ${ev.userKey} (sku ${ev.sku}, confirmed ${ev.skuConfirmed}, event ${ev.id}, ${ev.key})`);
	else if (ev.type === 'refund')
		console.log(`refund ${ev.orderId} of user ${ev.userKey} (event ${ev.id}, granted ${ev.granted})`);
	else if (ev.type === 'mismatch' && ev.intakeSku != null && ev.intakeSku !== ev.sku)
		console.log(`mismatch ${ev.orderId}: Toss says ${ev.sku}, the intake said ${ev.intakeSku}: not granted (event ${ev.id})`);
	else
		console.log(`${ev.type} ${ev.orderId} (event ${ev.id}, Toss status ${ev.tossStatus})`);
}

async function main() {
	let after = readCursor();
	let delay = 1000;

	while (!stopping) {
		let page;
		try {
			page = await getEvents(after);
		} catch (e) {
			if (stopping)
				break;
			console.error(`GET /v1/events: ${e.message}; again in ${delay / 1000} s`);
			await new Promise((r) => setTimeout(r, delay));
			delay = Math.min(delay * 2, 30000);
			continue;
		}
		delay = 1000;
		busy = true;
		for (const ev of page.events)
			await processEvent(ev);
		if (page.events.length > 0) {
			after = page.lastId;
			writeCursor(after);
		}
		busy = false;
		if (ONCE && page.events.length < LIMIT)
			break;
	}
}

for (const sig of ['SIGINT', 'SIGTERM']) {
	// Waiting on the feed: leave at once. Processing: finish the batch and
	// store the cursor first.
	process.on(sig, () => {
		stopping = true;
		if (!busy)
			process.exit(0);
	});
}
main().catch((e) => {
	console.error(e.message);
	process.exit(1);
});
