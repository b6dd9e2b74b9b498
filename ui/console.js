/* The operator console: asks the control API with the token kept for this
 * tab (sessionStorage), draws the overview, the order page and the live
 * event feed. No library; every element is built with the DOM, no HTML
 * is parsed from data. */
"use strict";

var TOKEN_KEY = "reconciled-token";
var REFRESH_MS = 10000;
var state = { metrics: null, metricsAt: 0, feedAfter: 0, feedRunning: false,
	timer: null };

function $(id) { return document.getElementById(id); }

function el(tag, text, cls) {
	var e = document.createElement(tag);
	if (text !== undefined && text !== null)
		e.textContent = String(text);
	if (cls)
		e.className = cls;
	return e;
}

function clear(node) {
	while (node.firstChild)
		node.removeChild(node.firstChild);
	return node;
}

/* A time in the viewer's zone with its offset: 2026-12-04 19:02:11 +01:00. */
function fmtTime(iso) {
	if (!iso)
		return "-";
	var d = new Date(iso);
	var p = function (n) { return (n < 10 ? "0" : "") + n; };
	var off = -d.getTimezoneOffset();
	var sign = off < 0 ? "-" : "+";
	off = Math.abs(off);
	return d.getFullYear() + "-" + p(d.getMonth() + 1) + "-" + p(d.getDate()) +
	    " " + p(d.getHours()) + ":" + p(d.getMinutes()) + ":" +
	    p(d.getSeconds()) + " " + sign + p(Math.floor(off / 60)) + ":" +
	    p(off % 60);
}

function token() { return sessionStorage.getItem(TOKEN_KEY); }

function api(method, path, opts) {
	var h = { "Authorization": "Bearer " + token() };
	var init = { method: method, headers: h, cache: "no-store" };
	if (method === "POST")
		h["Content-Type"] = "application/json";
	if (opts && opts.signal)
		init.signal = opts.signal;
	return fetch(path, init).then(function (r) {
		if (r.status === 401) {
			logout("the token was refused");
			throw new Error("unauthorized");
		}
		return r.json().then(function (body) {
			if (!r.ok)
				throw new Error(body.error ? body.error.message : r.status);
			return body;
		});
	});
}

function row(table, cells, numeric) {
	var tr = el("tr");
	cells.forEach(function (c, i) {
		var td = el("td", c);
		if (numeric && i > 0)
			td.className = "n";
		tr.appendChild(td);
	});
	table.appendChild(tr);
}

function orderLink(id) {
	var a = el("a", id);
	a.href = "#order/" + encodeURIComponent(id);
	return a;
}

function orderTable(orders) {
	var t = el("table");
	row(t, ["orderId", "state", "tossStatus", "added", "next poll"]);
	t.firstChild.childNodes.forEach(function (td) { td.className = "h"; });
	orders.forEach(function (o) {
		var tr = el("tr");
		var td = el("td");
		td.appendChild(orderLink(o.orderId));
		tr.appendChild(td);
		[o.state, o.tossStatus || "-", fmtTime(o.addedAt),
		    fmtTime(o.nextPollAt)].forEach(function (v) {
			tr.appendChild(el("td", v));
		});
		t.appendChild(tr);
	});
	return t;
}

/* ---- /metrics: the daemon's own state ------------------------------- */

function parseMetrics(text) {
	var m = {};
	text.split("\n").forEach(function (line) {
		if (line === "" || line.charAt(0) === "#")
			return;
		var sp = line.lastIndexOf(" ");
		m[line.slice(0, sp)] = Number(line.slice(sp + 1));
	});
	return m;
}

function drawDaemon(m) {
	var t = clear($("daemon")), pausedFor = "no";
	Object.keys(m).forEach(function (k) {
		var r = /^reconciled_paused\{reason="([^"]*)"\}$/.exec(k);
		if (r && m[k] === 1)
			pausedFor = "yes: " + r[1];
	});
	if (pausedFor !== "no" && m.reconciled_paused_since_timestamp_seconds > 0)
		pausedFor += ", since " + fmtTime(new Date(
		    m.reconciled_paused_since_timestamp_seconds * 1000).toISOString());
	row(t, ["role", m.reconciled_leader === 1 ? "leader" : "standby"]);
	row(t, ["paused", pausedFor]);
	row(t, ["rate limit", m.reconciled_rate_limit_per_second ?
	    m.reconciled_rate_limit_per_second + "/s" : "none"]);
	if (m.reconciled_cert_expiry_seconds !== undefined)
		row(t, ["client certificate expires",
		    fmtTime(new Date(m.reconciled_cert_expiry_seconds * 1000).toISOString())]);
	else
		row(t, ["client certificate expires", "-"]);
}

/* Polls per minute by outcome (summed over Toss statuses), from the
 * counters' change since the last refresh, and the share of the rate
 * limit they used. */
function pollsByOutcome(m) {
	var by = {};
	Object.keys(m).forEach(function (k) {
		var r = /^reconciled_polls_total\{outcome="([^"]*)"/.exec(k);
		if (r)
			by[r[1]] = (by[r[1]] || 0) + m[k];
	});
	return by;
}

function drawPolls(m, prev, secs) {
	var t = clear($("polls")), total = 0, now = pollsByOutcome(m),
	    before = prev ? pollsByOutcome(prev) : null;
	row(t, ["outcome", "per minute"]);
	Object.keys(now).sort().forEach(function (k) {
		var perMin = before && secs > 0 ?
		    Math.round((now[k] - (before[k] || 0)) * 60 / secs) : null;
		if (perMin !== null)
			total += perMin;
		row(t, [k, perMin === null ? "…" : perMin], true);
	});
	var limit = (m.reconciled_rate_limit_per_second || 0) * 60;
	row(t, ["rate budget used", limit === 0 ? "no limit set" : before ?
	    Math.round(total * 100 / limit) + "%" : "…"], true);
}

/* ---- the overview --------------------------------------------------- */

function drawChart(svg, hist) {
	var n = hist.counts.length, max = 1, w = 600, h = 100, i;
	clear(svg);
	svg.setAttribute("viewBox", "0 0 " + w + " " + (h + 14));
	hist.counts.forEach(function (c) { if (c > max) max = c; });
	for (i = 0; i < n; i++) {
		var bh = hist.counts[i] * h / max;
		var r = document.createElementNS("http://www.w3.org/2000/svg", "rect");
		r.setAttribute("x", (i * w / n).toFixed(2));
		r.setAttribute("y", (h - bh).toFixed(2));
		r.setAttribute("width", Math.max(w / n - 1, 0.5).toFixed(2));
		r.setAttribute("height", bh.toFixed(2));
		var title = document.createElementNS("http://www.w3.org/2000/svg", "title");
		title.textContent = fmtTime(new Date(Date.parse(hist.since) +
		    i * hist.bucketSeconds * 1000).toISOString()) + ": " +
		    hist.counts[i];
		r.appendChild(title);
		svg.appendChild(r);
	}
	var label = document.createElementNS("http://www.w3.org/2000/svg", "text");
	label.setAttribute("x", "0");
	label.setAttribute("y", String(h + 12));
	label.textContent = "max " + max + " per hour; from " + fmtTime(hist.since);
	svg.appendChild(label);
}

function drawAttention(a) {
	var held = clear($("held")), mism = clear($("mismatch")),
	    anom = clear($("anomaly"));
	a.held.forEach(function (g) {
		var d = el("div", null, "card");
		d.appendChild(el("h3", g.count + " held: Toss answered " + g.tossStatus));
		var p = el("p", "first seen " + fmtTime(g.firstSeen) +
		    ", last " + fmtTime(g.lastSeen) + ", for example ");
		p.appendChild(orderLink(g.example));
		d.appendChild(p);
		d.appendChild(el("p", "If Toss means a completed payment, add to the configuration:"));
		d.appendChild(el("pre", g.section + "\n" + g.configLine, "config-line"));
		d.appendChild(el("p", "then reload: systemctl reload reconciled (or send SIGHUP)."));
		held.appendChild(d);
	});
	if (a.mismatch.length) {
		mism.appendChild(el("h3", "Mismatch"));
		mism.appendChild(orderTable(a.mismatch));
	}
	if (a.anomaly.length) {
		anom.appendChild(el("h3", "Anomaly"));
		anom.appendChild(orderTable(a.anomaly));
	}
	$("human").hidden = !(a.held.length || a.mismatch.length ||
	    a.anomaly.length);
	clear($("pending")).appendChild(orderTable(a.pendingLongest));
}

function drawOverview(o) {
	var t = clear($("states"));
	Object.keys(o.orders).forEach(function (s) {
		var tr = el("tr");
		tr.appendChild(el("td", s));
		var td = el("td", o.orders[s], "n");
		td.setAttribute("data-state", s);
		tr.appendChild(td);
		t.appendChild(tr);
	});
	row(t, ["events", o.events], true);
	row(t, ["due now", o.due], true);
	var s = clear($("sinks"));
	row(s, ["sink", "lag", "state"]);
	o.sinks.forEach(function (k) {
		row(s, [k.name, k.lag, k.state + (k.lastError ? ": " +
		    k.lastError : "")]);
	});
	$("updated").textContent = "at " + fmtTime(o.now);
}

function refresh() {
	if (!token())
		return;
	api("GET", "/v1/overview").then(drawOverview).catch(showError);
	api("GET", "/v1/attention").then(drawAttention).catch(showError);
	api("GET", "/v1/history?hours=24").then(function (h) {
		drawChart($("chart-day"), h);
	}).catch(showError);
	api("GET", "/v1/history?hours=168").then(function (h) {
		drawChart($("chart-week"), h);
	}).catch(showError);
	fetch("/metrics", { cache: "no-store" }).then(function (r) {
		return r.text();
	}).then(function (text) {
		var m = parseMetrics(text), now = Date.now();
		drawDaemon(m);
		drawPolls(m, state.metrics, (now - state.metricsAt) / 1000);
		state.metrics = m;
		state.metricsAt = now;
	}).catch(showError);
}

function showError(e) {
	if (e && e.message !== "unauthorized")
		$("updated").textContent = "error: " + e.message;
}

/* ---- the order page ------------------------------------------------- */

function showOrder(id) {
	var box = clear($("order"));
	api("GET", "/v1/orders/" + encodeURIComponent(id) + "/history").then(function (h) {
		var o = h.order, t = el("table");
		box.appendChild(el("h2", "Order " + o.orderId));
		Object.keys(o).forEach(function (k) {
			var v = o[k];
			if (/At$/.test(k) && k !== "statusDeterminedAt")
				v = fmtTime(v);
			row(t, [k, v === null ? "-" : v]);
		});
		t.id = "order-fields";
		box.appendChild(t);
		var b = el("button", "Re-check now");
		b.type = "button";
		b.id = "recheck";
		b.addEventListener("click", function () {
			api("POST", "/v1/orders/" + encodeURIComponent(id) +
			    "/recheck").then(function () { showOrder(id); })
			    .catch(function (e) { box.appendChild(el("p", e.message, "error")); });
		});
		box.appendChild(b);
		box.appendChild(el("h3", "Transitions"));
		var tt = el("table");
		row(tt, ["at", "from", "to"]);
		h.transitions.forEach(function (x) {
			row(tt, [fmtTime(x.at), x.from || "-", x.to]);
		});
		box.appendChild(tt);
		box.appendChild(el("h3", "Events"));
		h.events.forEach(function (e) {
			box.appendChild(el("pre", JSON.stringify(e, null, 1)));
		});
	}).catch(function (e) { box.appendChild(el("p", e.message, "error")); });
}

function search(q) {
	var box = clear($("results"));
	clear($("order"));
	api("GET", "/v1/search?q=" + encodeURIComponent(q)).then(function (r) {
		if (r.orders.length === 1) {
			location.hash = "#order/" + encodeURIComponent(r.orders[0].orderId);
			return;
		}
		if (r.orders.length === 0)
			box.appendChild(el("p", "No order has this orderId, userKey or ref."));
		else
			box.appendChild(orderTable(r.orders));
	}).catch(function (e) { box.appendChild(el("p", e.message, "error")); });
}

/* ---- the event feed: GET /v1/events, long polling ------------------- */

function addEvent(e, fresh) {
	var li = el("li", null, fresh ? "new" : "");
	li.appendChild(el("strong", "#" + e.id + " " + e.type + " "));
	li.appendChild(orderLink(e.orderId));
	li.appendChild(el("span", " " + fmtTime(e.at)));
	li.setAttribute("data-id", e.id);
	var feed = $("feed");
	feed.insertBefore(li, feed.firstChild);
	while (feed.childNodes.length > 200)
		feed.removeChild(feed.lastChild);
}

function follow() {
	if (!token()) {
		state.feedRunning = false;
		return;
	}
	$("feed-state").textContent = "following";
	api("GET", "/v1/events?after=" + state.feedAfter + "&wait=25&limit=100")
	    .then(function (r) {
		r.events.forEach(function (e) { addEvent(e, true); });
		state.feedAfter = r.lastId;
		follow();
	}).catch(function () {
		$("feed-state").textContent = "reconnecting";
		setTimeout(follow, 3000);
	});
}

function startFeed() {
	if (state.feedRunning)
		return;
	state.feedRunning = true;
	api("GET", "/v1/overview").then(function (o) {
		state.feedAfter = Math.max(o.lastEventId - 50, 0);
		return api("GET", "/v1/events?after=" + state.feedAfter + "&limit=50");
	}).then(function (r) {
		r.events.forEach(function (e) { addEvent(e, false); });
		state.feedAfter = r.lastId;
		follow();
	}).catch(function () { state.feedRunning = false; });
}

/* ---- views, login --------------------------------------------------- */

function route() {
	var h = location.hash.replace(/^#/, "") || "overview";
	var view = h.split("/")[0];
	if (!token()) {
		$("login").hidden = false;
		$("nav").hidden = true;
		["overview", "order", "events"].forEach(function (v) {
			$("view-" + v).hidden = true;
		});
		$("token").focus();
		return;
	}
	if (["overview", "order", "events"].indexOf(view) < 0)
		view = "overview";
	$("login").hidden = true;
	$("nav").hidden = false;
	["overview", "order", "events"].forEach(function (v) {
		$("view-" + v).hidden = v !== view;
		if (v === view)
			$("nav-" + v).setAttribute("aria-current", "page");
		else
			$("nav-" + v).removeAttribute("aria-current");
	});
	if (view === "order" && h.indexOf("/") > 0)
		showOrder(decodeURIComponent(h.slice(h.indexOf("/") + 1)));
	if (!state.timer) {
		refresh();
		state.timer = setInterval(refresh, REFRESH_MS);
	}
	startFeed();
}

function logout(why) {
	sessionStorage.removeItem(TOKEN_KEY);
	if (state.timer)
		clearInterval(state.timer);
	state.timer = null;
	$("login-error").textContent = why || "";
	route();
}

document.addEventListener("DOMContentLoaded", function () {
	$("login-form").addEventListener("submit", function (ev) {
		ev.preventDefault();
		sessionStorage.setItem(TOKEN_KEY, $("token").value);
		$("token").value = "";
		$("login-error").textContent = "";
		route();
	});
	$("search-form").addEventListener("submit", function (ev) {
		ev.preventDefault();
		search($("q").value);
	});
	$("logout").addEventListener("click", function () { logout(); });
	window.addEventListener("hashchange", route);
	route();
});
