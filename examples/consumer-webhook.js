#!/usr/bin/env node
// A webhook consumer for reconciled's events: an HTTP server that verifies
// the Standard Webhooks signature of each delivery, skips event keys it has
// processed before (kept in a JSON file), "grants" by printing, and answers
// 2xx only once the event is processed and remembered. Node.js 18+, no
// dependencies.
//
//   WEBHOOK_SECRET=whsec_... PORT=8791 SEEN_FILE=./seen.json \
//       node examples/consumer-webhook.js
//
// reconciled.conf: [events] webhook_url = http://127.0.0.1:8791/webhook
//                           webhook_secret = (the same whsec_ secret)
'use strict';

const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');

const PORT = Number(process.env.PORT || 8791);
const HOST = process.env.HOST || '127.0.0.1';
const SEEN_FILE = process.env.SEEN_FILE || 'seen-events.json';
const TOLERANCE_S = 5 * 60;		// reject older (or newer) timestamps
const BODY_MAX = 1024 * 1024;

// The secret is "whsec_" + base64 of the key bytes.
function decodeSecret(secret) {
	if (typeof secret !== 'string' || !secret.startsWith('whsec_'))
		throw new Error('WEBHOOK_SECRET must be whsec_<base64>');
	const b64 = secret.slice('whsec_'.length);
	if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64) || b64.length % 4 !== 0)
		throw new Error('WEBHOOK_SECRET is not base64 after whsec_');
	return Buffer.from(b64, 'base64');
}

// True when one "v1,<base64>" signature in the header matches the HMAC of
// "id.timestamp.body" and the timestamp is within the tolerance.
function verify(key, id, timestamp, signatures, body) {
	if (!id || !timestamp || !signatures || !/^[0-9]+$/.test(timestamp))
		return false;
	const now = Math.floor(Date.now() / 1000);
	if (Math.abs(now - Number(timestamp)) > TOLERANCE_S)
		return false;
	const expected = crypto.createHmac('sha256', key)
	    .update(`${id}.${timestamp}.`).update(body).digest();
	let ok = false;
	for (const part of signatures.split(' ')) {
		const comma = part.indexOf(',');
		if (comma < 0 || part.slice(0, comma) !== 'v1')
			continue;
		const given = Buffer.from(part.slice(comma + 1), 'base64');
		// timingSafeEqual needs equal lengths; a length says nothing.
		if (given.length === expected.length &&
		    crypto.timingSafeEqual(given, expected))
			ok = true;
	}
	return ok;
}

// The keys already processed, loaded once, written back after each event
// (to a temporary file renamed over the old one, so a crash never leaves
// half a file).
function loadSeen() {
	try {
		return new Set(JSON.parse(fs.readFileSync(SEEN_FILE, 'utf8')));
	} catch (e) {
		if (e.code === 'ENOENT')
			return new Set();
		throw e;
	}
}

function saveSeen(seen) {
	const tmp = `${SEEN_FILE}.tmp`;
	const fd = fs.openSync(tmp, 'w');
	fs.writeSync(fd, JSON.stringify([...seen]));
	fs.fsyncSync(fd);
	fs.closeSync(fd);
	fs.renameSync(tmp, SEEN_FILE);
}

// The business part. A real one writes the grant to its own database,
// idempotently keyed by orderId, so that even a crash between granting and
// remembering the key cannot grant twice.
function processEvent(ev) {
	switch (ev.type) {
	case 'grant':
		// ev.sku is what Toss says was paid for (skuConfirmed true),
		// or, when Toss named none, the sku given at intake (false).
		console.log(`grant ${ev.orderId} to user ${ev.userKey} ` +
		    `(sku ${ev.sku}${ev.skuConfirmed ? '' : ', not confirmed by Toss'}` +
		    `, ref ${ev.ref})`);
		break;
	case 'refund':
		// The same sku as the grant.
		console.log(`refund ${ev.orderId} of user ${ev.userKey}` +
		    (ev.granted ? `: take back ${ev.sku}` : ' (never granted)'));
		break;
	case 'mismatch':
		// Never granted. With intakeSku set and different from sku,
		// Toss says another sku was bought than the intake claimed.
		if (ev.intakeSku != null && ev.intakeSku !== ev.sku)
			console.log(`mismatch ${ev.orderId}: Toss says ${ev.sku}, ` +
			    `the intake said ${ev.intakeSku}: tell a human`);
		else
			console.log(`mismatch ${ev.orderId} (Toss status ` +
			    `${ev.tossStatus}): nothing to grant`);
		break;
	default:	// failed, not_found, expired, held, anomaly
		console.log(`${ev.type} ${ev.orderId} (Toss status ` +
		    `${ev.tossStatus}): nothing to grant, maybe tell a human`);
	}
}

function main() {
	let key, seen;
	try {
		key = decodeSecret(process.env.WEBHOOK_SECRET);
		seen = loadSeen();
	} catch (e) {
		console.error(`consumer-webhook: ${e.message}`);
		process.exit(1);
	}

	const server = http.createServer((req, res) => {
		const answer = (code, text) => {
			res.writeHead(code, { 'Content-Type': 'text/plain' });
			res.end(text ? `${text}\n` : undefined);
		};
		if (req.method !== 'POST')
			return answer(405, 'POST only');
		const chunks = [];
		let size = 0;
		req.on('data', (c) => {
			size += c.length;
			if (size > BODY_MAX) {
				answer(413, 'too large');
				req.destroy();
			} else
				chunks.push(c);
		});
		req.on('end', () => {
			if (size > BODY_MAX)
				return;
			const body = Buffer.concat(chunks);
			if (!verify(key, req.headers['webhook-id'],
			    req.headers['webhook-timestamp'],
			    req.headers['webhook-signature'], body)) {
				console.error('refused a delivery: bad or ' +
				    'missing signature, or a stale timestamp');
				return answer(401, 'bad signature');
			}
			let ev;
			try {
				ev = JSON.parse(body.toString('utf8'));
			} catch (e) {
				return answer(400, 'not JSON');
			}
			if (typeof ev.key !== 'string' || ev.key === '')
				return answer(400, 'no key');
			// Processing is synchronous here, so no other delivery
			// of this key runs in between; an async one would mark
			// the key as in progress first.
			if (seen.has(ev.key)) {
				console.log(`duplicate ${ev.key}: already ` +
				    'processed');
				return answer(204);
			}
			try {
				processEvent(ev);
				seen.add(ev.key);
				saveSeen(seen);
			} catch (e) {
				// Not acknowledged: reconciled sends it again.
				seen.delete(ev.key);
				console.error(`event ${ev.key}: ${e.message}`);
				return answer(500, 'cannot process');
			}
			answer(204);
		});
	});
	server.listen(PORT, HOST, () =>
	    console.error(`listening on http://${HOST}:${PORT}/`));
	for (const sig of ['SIGINT', 'SIGTERM'])
		process.on(sig, () => server.close(() => process.exit(0)));
}

main();
