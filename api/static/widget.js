/*! Summit Assistant chat widget (plain JS, no build step): <script src="https://host/widget.js" data-api="https://host" data-lang="fr"></script>
 * Server text goes into text nodes only (no innerHTML); no inline code, so a strict CSP works. */
(function () {
'use strict';
if (window.SummitWidget) return;

var script = document.currentScript || (function () {
  var s = document.querySelectorAll('script[src*="widget.js"]');
  return s[s.length - 1];
})();
var SRC = (script && script.src) || location.href;
var ds = (script && script.dataset) || {};
var API = new URL(ds.api || '/', SRC).href.replace(/\/+$/, '');
var CSS = new URL('widget.css', SRC).href;
var NS = 'http://www.w3.org/2000/svg';

var S = {};
S.fr = {
  sub: 'Sommet pour l’action sur l’IA',
  open: 'Ouvrir Summit Assistant',
  dialog: 'Summit Assistant, questions sur le Sommet pour l’action sur l’IA',
  close: 'Fermer', reset: 'Nouvelle conversation',
  lang: 'Langue : français. Passer en anglais',
  welcome: 'Bonjour\u00a0! Posez une question sur le Sommet pour l’action sur l’IA de Paris. Chaque réponse cite ses sources\u00a0: cliquez sur [1], [2]… pour voir l’extrait.',
  suggestions: 'Questions suggérées',
  evidence: 'Phrase de la source qui répond', sourceOf: 'Source ', srcList: 'Sources\u00a0:',
  copy: 'Copier la réponse et ses sources', copied: 'Réponse et sources copiées.', copyFail: 'La copie a échoué\u00a0; sélectionnez le texte à la main.',
  up: 'Réponse utile', down: 'Réponse fausse ou inutile', thanks: 'Merci, votre avis est enregistré.',
  fbFail: 'Votre avis n’a pas pu être enregistré.',
  input: 'Votre question',
  hint: 'Entrée pour envoyer, Maj+Entrée pour aller à la ligne.',
  send: 'Envoyer', you: 'Vous\u00a0: ', bot: 'Assistant\u00a0: ',
  typing: 'Recherche dans les sources…',
  sources: 'Sources\u00a0:', source: 'Source ',
  nf: 'Pas dans mes sources',
  err: 'Erreur', net: 'Erreur réseau',
  netMsg: 'Impossible de joindre le serveur.',
  timeout: 'Le serveur met trop de temps à répondre.',
  bad: 'Réponse du serveur illisible.',
  retry: 'Réessayer', back: 'Retour',
  openDoc: 'Ouvrir le document complet', orig: 'Article original',
  loading: 'Chargement du document…', doc: 'Document complet', pub: 'publié le ',
  loc: 'fr-FR'
};
S.en = {
  sub: 'AI Action Summit – Paris',
  open: 'Open Summit Assistant',
  dialog: 'Summit Assistant, questions about the AI Action Summit',
  close: 'Close', reset: 'New conversation',
  lang: 'Language: English. Switch to French',
  welcome: 'Hello! Ask a question about the Paris AI Action Summit. Every answer cites its sources: click [1], [2]… to see the passage.',
  suggestions: 'Suggested questions',
  evidence: 'Sentence of the source that answers', sourceOf: 'Source ', srcList: 'Sources:',
  copy: 'Copy the answer with its sources', copied: 'Answer and sources copied.', copyFail: 'Copying failed; select the text by hand.',
  up: 'Helpful answer', down: 'Wrong or unhelpful answer', thanks: 'Thank you, your feedback is saved.',
  fbFail: 'Your feedback could not be saved.',
  input: 'Your question',
  hint: 'Enter to send, Shift+Enter for a new line.',
  send: 'Send', you: 'You: ', bot: 'Assistant: ',
  typing: 'Searching the sources…',
  sources: 'Sources:', source: 'Source ',
  nf: 'Not in my sources',
  err: 'Error', net: 'Network error',
  netMsg: 'Could not reach the server.',
  timeout: 'The server took too long to answer.',
  bad: 'Unreadable server response.',
  retry: 'Retry', back: 'Back',
  openDoc: 'Open the whole document', orig: 'Original article',
  loading: 'Loading the document…', doc: 'Whole document', pub: 'published ',
  loc: 'en-GB'
};

function pickLang(l) { return String(l || '').toLowerCase().indexOf('fr') === 0 ? 'fr' : 'en'; }
var lang = /^(fr|en)/i.test(ds.lang || '') ? pickLang(ds.lang) : pickLang(document.documentElement.lang);
var binds = [], history = [], busy = false, isOpen = false, view = 'chat';
var lastBadge = null, docCache = {}, docReq = 0;

// ---- DOM helpers (never innerHTML)
function str(x) { return x == null ? '' : String(x); }
function h(tag, a, kids) {
  var e = document.createElement(tag);
  if (tag === 'button') e.type = 'button'; // never submit by accident
  for (var k in a || {}) {
    var v = a[k];
    if (v == null || v === false) continue;
    if (k === 'c') e.className = v.split(' ').map(function (x) { return 'summit-' + x; }).join(' ');
    else if (k === 't') e.setAttribute('data-testid', 'summit-' + v);
    else if (k.slice(0, 2) === 'on') e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : v);
  }
  (kids || []).forEach(function (c) { if (c != null) e.append(c); }); // strings become text nodes
  return e;
}
function icon(d) {
  var s = document.createElementNS(NS, 'svg'), p = document.createElementNS(NS, 'path');
  s.setAttribute('viewBox', '0 0 24 24'); s.setAttribute('aria-hidden', 'true');
  p.setAttribute('d', d); s.appendChild(p); return s;
}
var I = {
  chat: 'M4 4h16a1 1 0 0 1 1 1v11a1 1 0 0 1-1 1H10l-5 4v-4H4a1 1 0 0 1-1-1V5a1 1 0 0 1 1-1zM8 9h8M8 13h5',
  close: 'M6 6l12 12M18 6L6 18', send: 'M4 12h15M13 6l6 6-6 6', back: 'M15 5l-7 7 7 7',
  reset: 'M4 12a8 8 0 1 0 2.5-5.8M4 4v5h5', nf: 'M12 3a9 9 0 1 0 0 18 9 9 0 0 0 0-18zM6 6l12 12',
  err: 'M12 3l10 18H2zM12 10v5M12 18v.01', doc: 'M6 3h8l4 4v14H6zM14 3v4h4M9 12h6M9 16h6',
  ext: 'M14 4h6v6M20 4l-9 9M18 14v6H4V6h6',
  copy: 'M9 9h10v11H9zM5 15H4V4h11v1',
  up: 'M7 11v9H4v-9zM7 11l4-7a2 2 0 0 1 3 2l-1 4h5a2 2 0 0 1 2 2l-2 7a2 2 0 0 1-2 1H7',
  down: 'M7 13V4H4v9zM7 13l4 7a2 2 0 0 0 3-2l-1-4h5a2 2 0 0 0 2-2l-2-7a2 2 0 0 0-2-1H7'
};
// bind(el, fn): fn(el, strings) now and on every language switch
function bind(e, fn) { binds.push([e, fn]); fn(e, S[lang]); return e; }
function T(e, key, pre) { return bind(e, function (x, s) { x.textContent = (pre || '') + s[key]; }); }
function A(e, attr, key) { return bind(e, function (x, s) { x.setAttribute(attr, s[key]); }); }
function L(e, key) { return bind(e, function (x, s) { x.setAttribute('aria-label', x.title = s[key]); }); } // label + tooltip

// ---- highlight helpers
// Server offsets count code points; JS strings count UTF-16 units.
function mapper(t) {
  var m = [0];
  Array.from(t).forEach(function (ch) { m.push(m[m.length - 1] + ch.length); });
  var f = function (k) { return m[k]; }; f.n = m.length - 1; return f;
}
function ranges(hl, off, t) {
  var map = mapper(t), n = map.n, r = [], out = [];
  function cl(v) { return Math.max(0, Math.min(n, Math.floor(v - off))); } // NaN -> dropped
  (Array.isArray(hl) ? hl : []).forEach(function (x) {
    if (!x || x.length < 2) return;
    var a = cl(x[0]), b = cl(x[1]);
    if (b > a) r.push([map(a), map(b)]);
  });
  r.sort(function (p, q) { return p[0] - q[0]; }).forEach(function (x) {
    var l = out[out.length - 1];
    if (l && x[0] <= l[1]) l[1] = Math.max(l[1], x[1]); else out.push(x);
  });
  return out;
}
// text -> fragment of text nodes, <mark> for marks, wrapped in a span for the passage range
function build(text, marks, pass) {
  var cuts = [0, text.length], f = document.createDocumentFragment(), wrap = null;
  marks.forEach(function (r) { cuts.push(r[0], r[1]); });
  if (pass) cuts.push(pass[0], pass[1]);
  cuts.sort(function (a, b) { return a - b; });
  for (var i = 0; i < cuts.length - 1; i++) {
    var a = cuts[i], b = cuts[i + 1];
    if (a >= b) continue;
    var seg = text.slice(a, b);
    var inM = marks.some(function (r) { return r[0] <= a && b <= r[1]; });
    var node = inM ? h('mark', { c: 'mark', t: 'highlight' }, [seg]) : document.createTextNode(seg);
    if (pass && pass[0] <= a && b <= pass[1]) {
      if (!wrap) { wrap = h('span', { c: 'inpass' }); f.appendChild(wrap); }
      wrap.appendChild(node);
    } else { wrap = null; f.appendChild(node); }
  }
  return f;
}
function fmtDate(v) { // "2025-02-10..." -> "10 février 2025"; anything else as given
  var m = /^(\d{4})-(\d\d)-(\d\d)/.exec(v = str(v));
  return m ? new Date(Date.UTC(+m[1], m[2] - 1, +m[3])).toLocaleDateString(S[lang].loc, { dateStyle: 'long', timeZone: 'UTC' }) : v;
}
function safeUrl(u) {
  if (!u) return null;
  try { var x = new URL(String(u), location.href); return /^https?:$/.test(x.protocol) ? x.href : null; } catch (e) { return null; }
}

// ---- network
// The API's {"detail": "..."}; for anything else, the start of the body as plain text.
function detailOf(d, txt) {
  var x = d && d.detail;
  if (x && typeof x === 'object') x = JSON.stringify(x);
  return str(x || str(txt).replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ').trim().slice(0, 300));
}
// meta (optional) receives the index build that answered (X-Summit-Build header).
function request(path, body, meta) {
  var ctl = new AbortController(), timer = setTimeout(function () { ctl.abort(); }, 90000);
  var opt = { method: body ? 'POST' : 'GET', headers: { Accept: 'application/json' }, signal: ctl.signal };
  if (body) { opt.headers['Content-Type'] = 'application/json'; opt.body = JSON.stringify(body); }
  return fetch(API + path, opt).then(function (res) {
    if (meta) meta.build = res.headers.get('X-Summit-Build');
    return res.text().then(function (txt) {
      var d = null;
      try { d = txt ? JSON.parse(txt) : null; } catch (e) { /* not JSON */ }
      if (!res.ok) throw { status: res.status, statusText: res.statusText, detail: detailOf(d, txt) };
      if (!d || typeof d !== 'object') throw { bad: true, status: res.status };
      return d;
    });
  }, function (e) {
    throw { net: true, abort: !!(e && e.name === 'AbortError'), detail: e && e.message };
  }).finally(function () { clearTimeout(timer); });
}

// ---- build the UI
var root = h('div', { c: 'root', 'data-summit-widget': '' });
root.hidden = true; // until widget.css is loaded (avoids a flash of unstyled content)

var launcher = h('button', { c: 'launcher', t: 'launcher', 'aria-expanded': 'false',
  'aria-controls': 'summit-panel', onclick: toggle }, [icon(I.chat)]);
L(launcher, 'open');

var langFr = h('span', { 'aria-hidden': 'true' }, ['FR']), langEn = h('span', { 'aria-hidden': 'true' }, ['EN']);
var langBtn = h('button', { c: 'lang', t: 'lang', onclick: function () { setLang(lang === 'fr' ? 'en' : 'fr'); } }, [langFr, langEn]);
L(langBtn, 'lang');
bind(langBtn, function () {
  langFr.className = lang === 'fr' ? 'summit-on' : ''; langEn.className = lang === 'en' ? 'summit-on' : '';
});
var resetBtn = h('button', { c: 'ibtn', t: 'reset', onclick: reset }, [icon(I.reset)]);
L(resetBtn, 'reset');
var closeBtn = h('button', { c: 'ibtn', t: 'close', onclick: close }, [icon(I.close)]);
L(closeBtn, 'close');

var head = h('div', { c: 'head' }, [
  h('div', { c: 'titles' }, [h('h2', { c: 'title', id: 'summit-title' }, ['Summit Assistant']), T(h('p', { c: 'sub' }), 'sub')]),
  langBtn, resetBtn, closeBtn
]);

// Suggested questions come from the server (only those its index answers), in the UI language.
var suggested = [], suggestLoaded = false;
var suggest = h('div', { c: 'suggest', t: 'suggestions', role: 'group', hidden: true });
A(suggest, 'aria-label', 'suggestions');
function renderSuggestions() {
  var mine = suggested.filter(function (q) { return q.language === lang; });
  if (!mine.length) mine = suggested;
  suggest.textContent = '';
  mine.slice(0, 4).forEach(function (q) {
    suggest.appendChild(h('button', { c: 'chip', t: 'suggestion', lang: q.language, onclick: function () {
      if (busy) return; input.value = q.question; submit();
    } }, [q.question]));
  });
  suggest.hidden = !mine.length;
}
function loadSuggestions() {
  return request('/api/suggestions').then(function (d) {
    suggested = (Array.isArray(d.questions) ? d.questions : []).filter(function (q) {
      return q && typeof q.question === 'string' && q.question.trim();
    }).map(function (q) { return { question: q.question, language: str(q.language) }; });
    renderSuggestions();
  }, function () { suggested = []; renderSuggestions(); });
}
var welcome = h('div', { c: 'welcome', t: 'welcome' }, [T(h('p'), 'welcome'), suggest]);
var log = h('div', { c: 'log', t: 'log', role: 'log', 'aria-live': 'polite', 'aria-relevant': 'additions', tabindex: '0' }, [welcome]);
A(log, 'aria-label', 'dialog');

var input = h('textarea', { id: 'summit-input', c: 'input', t: 'input', rows: '1', 'aria-describedby': 'summit-hint', autocomplete: 'off',
  oninput: autosize, onkeydown: function (e) {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && e.keyCode !== 229) { e.preventDefault(); submit(); }
  } });
bind(input, function (e, s) { e.placeholder = s.input + '…'; });
var sendBtn = h('button', { type: 'submit', c: 'send', t: 'send' }, [icon(I.send)]);
L(sendBtn, 'send');
var form = h('form', { c: 'form', novalidate: true, onsubmit: function (e) { e.preventDefault(); submit(); } }, [
  T(h('label', { c: 'sr', 'for': 'summit-input' }), 'input'),
  input, T(h('span', { c: 'sr', id: 'summit-hint' }), 'hint'), sendBtn
]);

// detail view (passage of one citation)
var dBack = h('button', { c: 'back', t: 'back', onclick: goBack }, [icon(I.back), T(h('span'), 'back')]);
var dLabel = h('span', { c: 'bartitle' });
var dScroll = h('div', { c: 'scroll' });
var detail = h('section', { c: 'over', t: 'detail', id: 'summit-detail', role: 'region', 'aria-labelledby': 'summit-dtitle', hidden: true },
  [h('div', { c: 'bar' }, [dBack, dLabel]), dScroll]);

// document view (whole text)
var docBack = h('button', { c: 'back', t: 'doc-back', onclick: goBack }, [icon(I.back), T(h('span'), 'back')]);
var docScroll = h('div', { c: 'scroll', tabindex: '0' });
var docView = h('section', { c: 'over', t: 'doc', role: 'region', 'aria-labelledby': 'summit-doctitle', hidden: true },
  [h('div', { c: 'bar' }, [docBack, T(h('span', { c: 'bartitle' }), 'doc')]), docScroll]);

var panel = h('div', { id: 'summit-panel', c: 'panel', t: 'panel', role: 'dialog', hidden: true },
  [head, h('div', { c: 'body' }, [log, form, detail, docView])]);
A(panel, 'aria-label', 'dialog');
root.appendChild(launcher); root.appendChild(panel);

// ---- conversation
function autosize() {
  input.style.height = 'auto';
  input.style.height = Math.min(input.scrollHeight + 2, 140) + 'px';
}
function scrollEnd() { log.scrollTop = log.scrollHeight; }
function msg(role, kids) {
  var m = h('div', { c: 'msg', t: 'msg', 'data-role': role }, [T(h('span', { c: 'sr' }), role === 'user' ? 'you' : 'bot')].concat(kids));
  log.appendChild(m);
  return m;
}
function setBusy(b) {
  busy = b;
  sendBtn.disabled = b; resetBtn.disabled = b;
  log.setAttribute('aria-busy', b ? 'true' : 'false');
}
function submit() {
  var q = input.value.trim();
  if (busy) return;
  if (!q) { input.focus(); return; }
  input.value = ''; autosize();
  msg('user', [h('p', { c: 'txt' }, [q])]);
  scrollEnd();
  ask(q, history.slice(-20));
}
function ask(q, hist) {
  setBusy(true);
  var typing = h('div', { c: 'typing', t: 'typing' }, [
    h('span', { c: 'dots', 'aria-hidden': 'true' }, [h('i'), h('i'), h('i')]), T(h('span'), 'typing')]);
  log.appendChild(typing); scrollEnd();
  function done() { typing.remove(); setBusy(false); }
  var meta = {};
  return request('/api/ask', { question: q, history: hist, k: 5 }, meta).then(function (d) {
    if (typeof d.answer !== 'string') throw { bad: true, status: 200 };
    done(); history.push(q); addAnswer(d, { question: q, history: hist, build: meta.build });
  }).catch(function (err) {
    if (!(err && (err.status || err.net || err.bad))) err = { bad: true, detail: str(err && err.message) };
    if (busy) done();
    addError(err, q, hist);
  });
}
function addAnswer(d, ctx) {
  var nf = d.found === false;
  var cites = nf || !Array.isArray(d.citations) ? [] : d.citations.filter(function (c) { return c && typeof c === 'object'; });
  var kids = [];
  if (nf) kids.push(h('p', { c: 'mtitle' }, [icon(I.nf), T(h('span'), 'nf')]));
  var language = /^(fr|en)$/.test(d.language) ? d.language : null;
  kids.push(h('p', { c: 'txt', t: 'answer', lang: language }, [d.answer]));
  var quote = cites.length ? sentenceOf(cites[0]) : '';
  if (quote) kids.push(evidence(d.answer, quote, cites[0]));
  if (cites.length) {
    // One group per document, labelled with its source: "RTL [2] [5]"; each [n] opens its passage.
    var groups = [], byDoc = {};
    cites.forEach(function (c, i) {
      var key = str(c.doc_id) || 'n' + i;
      if (!byDoc[key]) { byDoc[key] = { c: c, items: [] }; groups.push(byDoc[key]); }
      byDoc[key].items.push([c, i]);
    });
    kids.push(h('div', { c: 'cites' }, [T(h('span'), 'sources')].concat(groups.map(function (g) {
      return h('span', { c: 'sgroup', t: 'source-group' }, [
        h('span', { c: 'sname', t: 'source-name', title: str(g.c.title) || null }, [str(g.c.source) || str(g.c.title) || str(g.c.doc_id)])
      ].concat(g.items.map(function (ci) {
        var c = ci[0], n = c.n != null ? str(c.n) : String(ci[1] + 1);
        var b = h('button', { c: 'badge', t: 'badge', 'data-n': n, 'aria-expanded': 'false',
          'aria-controls': 'summit-detail', title: str(c.title) || null,
          onclick: function () { showDetail(c, b, n); } }, ['[' + n + ']']);
        return bind(b, function (e, s) {
          e.setAttribute('aria-label', s.source + n + (c.source ? ' : ' + str(c.source) : '') + (c.title ? ' \u2014 ' + str(c.title) : ''));
        });
      })));
    }))));
  }
  kids.push(answerActions(d, cites, quote, ctx || {}));
  var m = msg(nf ? 'notfound' : 'assistant', kids);
  log.scrollTop = m.offsetHeight > log.clientHeight ? m.offsetTop - 8 : log.scrollHeight;
}
// The answering sentence of a citation: its first highlight, cut out of the passage.
function sentenceOf(c) {
  var passage = str(c.passage), r = ranges(c.highlights, +c.start || 0, passage)[0];
  return r ? passage.slice(r[0], r[1]).trim() : '';
}
function sourceLine(c) {
  return bind(h('span', { c: 'qsrc', t: 'quote-source' }), function (e) {
    var d = fmtDate(c.published);
    e.textContent = '\u2014 ' + [str(c.source), d].filter(Boolean).join(', ');
  });
}
// Under the short answer: the sentence that answers, with the source's name and date.
function evidence(answer, quote, c) {
  var same = str(answer).trim().toLowerCase() === quote.toLowerCase();
  var marks = [], at = same ? -1 : quote.toLowerCase().indexOf(str(answer).trim().toLowerCase());
  if (at >= 0 && str(answer).trim()) marks.push([at, at + str(answer).trim().length]);
  var q = h('blockquote', { c: 'quote', t: 'quote', lang: /^(fr|en)$/.test(c.language) ? c.language : null }, [build(quote, marks, null)]);
  A(q, 'aria-label', 'evidence');
  return h('figure', { c: 'evidence', t: 'evidence' }, [same ? null : q, h('figcaption', { c: 'qcap' }, [sourceLine(c)])]);
}
function plainCitation(c, i) {
  var d = fmtDate(c.published), u = safeUrl(c.url);
  return '[' + (c.n != null ? c.n : i + 1) + '] ' + [str(c.title), str(c.source), d].filter(Boolean).join(' \u2014 ') + (u ? ' <' + u + '>' : '');
}
// "Copy answer with sources": the answer, the quoted sentence, then the numbered sources.
function copyText(d, cites, quote) {
  var lines = [str(d.answer)];
  if (quote && cites[0]) {
    var d0 = fmtDate(cites[0].published);
    var quoted = lang === 'fr' ? '\u00ab\u00a0' + quote + '\u00a0\u00bb' : '\u201c' + quote + '\u201d';
    lines.push(quoted + ' \u2014 ' + [str(cites[0].source), d0].filter(Boolean).join(', '));
  }
  if (cites.length) lines.push('', S[lang].srcList);
  cites.forEach(function (c, i) { lines.push(plainCitation(c, i)); });
  return lines.join('\n');
}
function copyToClipboard(text) {
  if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text);
  return new Promise(function (ok, fail) { // http:// hosts: the old way, from a hidden textarea
    var ta = h('textarea', { c: 'sr', 'aria-hidden': 'true', tabindex: '-1' });
    ta.value = text; root.appendChild(ta); ta.select();
    var done = false;
    try { done = document.execCommand('copy'); } catch (e) { done = false; }
    ta.remove();
    if (done) ok(); else fail(new Error('copy refused'));
  });
}
function answerActions(d, cites, quote, ctx) {
  var status = h('span', { c: 'fbstatus', t: 'status', role: 'status' });
  var row = h('div', { c: 'mactions' });
  function say(key) { bind(status, function (e, s) { e.textContent = s[key]; }); }
  if (cites.length) {
    var copyBtn = h('button', { c: 'ibtn2', t: 'copy', onclick: function () {
      copyToClipboard(copyText(d, cites, quote)).then(function () { say('copied'); }, function () { say('copyFail'); });
    } }, [icon(I.copy)]);
    L(copyBtn, 'copy');
    row.appendChild(copyBtn);
  }
  var votes = {};
  ['up', 'down'].forEach(function (v) {
    var b = h('button', { c: 'ibtn2', t: v, 'aria-pressed': 'false', onclick: function () { vote(v); } }, [icon(I[v])]);
    L(b, v);
    votes[v] = b;
    row.appendChild(b);
  });
  function vote(v) {
    if (votes.up.disabled) return;
    votes.up.disabled = votes.down.disabled = true;
    votes[v].setAttribute('aria-pressed', 'true');
    var body = { verdict: v, question: str(ctx.question || d.question), history: ctx.history || [], answer: str(d.answer),
      found: d.found !== false, language: /^(fr|en)$/.test(d.language) ? d.language : null,
      build_id: ctx.build || null,
      citations: cites.slice(0, 20).map(function (c, i) {
        return { n: typeof c.n === 'number' ? c.n : i + 1, doc_id: c.doc_id == null ? null : str(c.doc_id),
          chunk_id: c.chunk_id == null ? null : str(c.chunk_id), title: c.title == null ? null : str(c.title),
          source: c.source == null ? null : str(c.source), published: c.published == null ? null : str(c.published),
          url: c.url == null ? null : str(c.url), quote: i === 0 && quote ? quote : (sentenceOf(c) || null) };
      }) };
    request('/api/feedback', body).then(function () { say('thanks'); }, function () {
      votes.up.disabled = votes.down.disabled = false;
      votes[v].setAttribute('aria-pressed', 'false');
      say('fbFail');
    });
  }
  row.appendChild(status);
  return row;
}
// Title, explanation and a Retry button for a failed request; again() returns false to refuse.
function errKids(err, again) {
  var title = bind(h('span'), function (e, s) {
    e.textContent = err.net ? s.net : s.err + (err.status ? ' ' + err.status : '') + (err.statusText ? ' \u2013 ' + err.statusText : '');
  });
  var text = h('p', { c: 'txt' });
  if (err.net && !err.abort) bind(text, function (e, s) { e.textContent = s.netMsg + ' (' + API + ')'; });
  else if (err.net || err.bad) T(text, err.net ? 'timeout' : 'bad');
  else text.textContent = err.detail || '';
  var retry = h('button', { c: 'btn btn2', t: 'retry', onclick: function () {
    if (again() !== false) retry.disabled = true;
  } }, [icon(I.reset), T(h('span'), 'retry')]);
  return [h('p', { c: 'mtitle' }, [icon(I.err), title]), text, h('p', { c: 'actions' }, [retry])];
}
function addError(err, q, hist) {
  msg('error', errKids(err, function () { if (busy) return false; ask(q, hist); }));
  scrollEnd();
}
function reset() {
  if (busy) return;
  history = []; setView('chat');
  Array.from(log.children).forEach(function (n) { if (n !== welcome) n.remove(); });
  loadSuggestions();
  input.focus();
}

// ---- citation detail + document views
function meta(source, published) {
  return bind(h('p', { c: 'meta' }), function (e, s) {
    var d = fmtDate(published);
    e.textContent = [str(source), d ? s.pub + d : ''].filter(Boolean).join(' \u00b7 ');
  });
}
function origLink(url) {
  var u = safeUrl(url);
  return u ? h('a', { c: 'btn btn2', href: u, target: '_blank', rel: 'noopener noreferrer' }, [icon(I.ext), T(h('span'), 'orig')]) : null;
}
function showDetail(c, badge, n) {
  if (lastBadge) lastBadge.setAttribute('aria-expanded', 'false');
  lastBadge = badge;
  var passage = str(c.passage), start = +c.start || 0;
  dLabel.textContent = '';
  dLabel.appendChild(bind(h('span'), function (e, s) { e.textContent = s.source + n; }));
  var openBtn = h('button', { c: 'btn', t: 'open-doc', onclick: function () { openDoc(c); } }, [icon(I.doc), T(h('span'), 'openDoc')]);
  dScroll.textContent = '';
  [h('h3', { c: 'dtitle', id: 'summit-dtitle' }, [str(c.title) || str(c.doc_id)]),
    meta(c.source, c.published),
    h('blockquote', { c: 'passage' }, [build(passage, ranges(c.highlights, start, passage), null)]),
    h('p', { c: 'actions' }, [openBtn, origLink(c.url)])
  ].forEach(function (x) { if (x) dScroll.appendChild(x); });
  setView('detail');
  dScroll.scrollTop = 0;
  dBack.focus();
}
function openDoc(c) {
  var id = str(c.doc_id), my = ++docReq;
  setView('doc');
  docView.setAttribute('aria-busy', 'true');
  docScroll.textContent = '';
  docScroll.appendChild(h('h3', { c: 'dtitle', id: 'summit-doctitle' }, [str(c.title) || id]));
  docScroll.appendChild(T(h('p', { c: 'status', role: 'status' }), 'loading'));
  docBack.focus();
  var p = docCache[id] || (docCache[id] = request('/api/documents/' + encodeURIComponent(id)));
  p.then(function (d) {
    if (my !== docReq || view !== 'doc') return;
    docView.setAttribute('aria-busy', 'false');
    renderDoc(c, d);
  }, function (err) {
    delete docCache[id];
    if (my !== docReq || view !== 'doc') return;
    docView.setAttribute('aria-busy', 'false');
    docScroll.lastChild.remove();
    docScroll.appendChild(h('div', { c: 'msg', 'data-role': 'error', role: 'alert' }, errKids(err, function () { openDoc(c); })));
  });
}
function renderDoc(c, d) {
  var text = str(d.text), passage = str(c.passage);
  var marks = ranges(c.highlights, 0, text), pass = ranges([[c.start, c.end]], 0, text)[0] || null;
  // If the stored offsets drifted, re-anchor on the passage text itself.
  if (passage && pass && text.slice(pass[0], pass[0] + passage.length) !== passage) {
    var at = text.indexOf(passage);
    if (at >= 0) {
      var shift = at - pass[0];
      pass = [at, at + passage.length];
      marks = marks.map(function (r) { return [r[0] + shift, r[1] + shift]; });
    }
  }
  docScroll.textContent = '';
  var body = h('div', { c: 'doctext', t: 'doc-text' }, [build(text, marks, pass)]), link = origLink(d.url || c.url);
  [h('h3', { c: 'dtitle', id: 'summit-doctitle' }, [str(d.title) || str(c.title) || str(c.doc_id)]),
    meta(d.source || c.source, d.published || c.published), link && h('p', { c: 'actions' }, [link]), body
  ].forEach(function (x) { if (x) docScroll.appendChild(x); });
  var target = body.querySelector('mark') || body.querySelector('.summit-inpass');
  if (target) {
    var sr = docScroll.getBoundingClientRect(), tr = target.getBoundingClientRect();
    docScroll.scrollTop += tr.top - sr.top - sr.height / 3;
  }
}
function setView(v) {
  view = v;
  detail.hidden = v !== 'detail';
  docView.hidden = v !== 'doc';
  log.inert = form.inert = v !== 'chat';
  if (v === 'chat') docReq++;
  if (lastBadge) lastBadge.setAttribute('aria-expanded', v === 'chat' ? 'false' : 'true');
}
function goBack() {
  if (view === 'doc') {
    setView('detail');
    var b = dScroll.querySelector('[data-testid="summit-open-doc"]');
    (b || dBack).focus();
  } else if (view === 'detail') {
    setView('chat');
    (lastBadge && lastBadge.isConnected ? lastBadge : input).focus();
  } else close();
}

// ---- open / close / language
function open() {
  if (!root.isConnected) return;
  root.hidden = false;
  isOpen = true;
  if (!suggestLoaded) { suggestLoaded = true; loadSuggestions(); } // on first open only: no request for a closed widget
  panel.hidden = false;
  root.classList.add('summit-is-open');
  launcher.setAttribute('aria-expanded', 'true');
  if (view === 'chat') { scrollEnd(); input.focus(); } else (view === 'doc' ? docBack : dBack).focus();
}
function close() {
  if (!isOpen) return;
  isOpen = false;
  setView('chat');
  panel.hidden = true;
  root.classList.remove('summit-is-open');
  launcher.setAttribute('aria-expanded', 'false');
  launcher.focus();
}
function toggle() { if (isOpen) close(); else open(); }
function setLang(l) {
  lang = pickLang(l);
  panel.lang = lang;
  binds = binds.filter(function (b) { return b[0].isConnected || root.contains(b[0]) || !root.isConnected; });
  binds.forEach(function (b) { b[1](b[0], S[lang]); });
  renderSuggestions();
}
root.addEventListener('keydown', function (e) {
  if (e.key === 'Escape' && isOpen) { e.preventDefault(); e.stopPropagation(); goBack(); }
});
panel.lang = lang;

// ---- mount
function mount() {
  document.body.appendChild(root);
  var link = null;
  document.querySelectorAll('link[rel~="stylesheet"]').forEach(function (l) { if (l.href === CSS) link = l; });
  function show() { root.hidden = false; }
  if (link && link.sheet) show();
  else {
    if (!link) {
      link = document.createElement('link');
      link.rel = 'stylesheet'; link.href = CSS;
      document.head.appendChild(link);
    }
    link.addEventListener('load', show); link.addEventListener('error', show);
    setTimeout(show, 3000);
  }
  // Any host element with data-summit-open opens the assistant.
  document.addEventListener('click', function (e) {
    var t = e.target.closest && e.target.closest('[data-summit-open]');
    if (t && !root.contains(t)) { e.preventDefault(); open(); }
  });
}
if (document.body) mount(); else document.addEventListener('DOMContentLoaded', mount);

window.SummitWidget = Object.freeze({
  open: open, close: close, toggle: toggle,
  setLang: setLang,
  ask: function (q) { open(); input.value = str(q); submit(); },
  get lang() { return lang; }
});
})();
