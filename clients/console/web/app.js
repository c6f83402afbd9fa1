// The triage console page: plain JavaScript, no build step. Every value
// from the broker is put into the page as text (never as HTML).
'use strict';

const state = { user: null, csrf: null, queues: [], sources: [], timers: [] };

// --- helpers -----------------------------------------------------------------

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = value;
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? '' : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const SVG_NS = 'http://www.w3.org/2000/svg';
function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === 'text') node.textContent = value; else node.setAttribute(key, value);
  }
  for (const child of children.flat()) if (child) node.append(child);
  return node;
}

// "AGENCY_TYPE_HEALTH_GP" -> "health GP"-ish readable words.
const ENUM_PREFIXES = ['AGENCY_TYPE_', 'CONCERN_CATEGORY_', 'PRIORITY_BAND_', 'DECISION_',
  'CONSENT_STATUS_', 'SEX_', 'REFERRAL_STATE_', 'STAGE_'];
function words(name) {
  if (!name) return '';
  let text = String(name);
  for (const prefix of ENUM_PREFIXES) {
    if (text.startsWith(prefix)) { text = text.slice(prefix.length); break; }
  }
  return text.toLowerCase().replace(/_/g, ' ').replace(/\bgp\b/, 'GP');
}

function fmtDuration(ms) {
  const minutes = Math.floor(Math.abs(ms) / 60000);
  const days = Math.floor(minutes / 1440);
  const hours = Math.floor((minutes % 1440) / 60);
  const mins = minutes % 60;
  if (days > 0) return `${days}d ${hours}h`;
  if (hours > 0) return `${hours}h ${String(mins).padStart(2, '0')}m`;
  return `${mins}m`;
}

function fmtTime(iso) {
  if (!iso) return '';
  const date = new Date(iso);
  return date.toLocaleString('en-GB', { dateStyle: 'medium', timeStyle: 'short' });
}

function dateOf(d) {
  if (!d || !d.year) return '';
  return `${String(d.day).padStart(2, '0')}/${String(d.month).padStart(2, '0')}/${d.year}`;
}

// Due-time urgency: red when overdue or due within the hour, amber within
// four hours, green otherwise. The text says it too (not colour alone).
function dueCell(dueIso) {
  const span = el('span', { class: 'due', 'data-due': dueIso });
  updateDue(span);
  return span;
}
function updateDue(span) {
  const left = new Date(span.dataset.due).getTime() - Date.now();
  let level = 'green';
  if (left < 3600 * 1000) level = 'red'; else if (left < 4 * 3600 * 1000) level = 'amber';
  span.className = `due due-${level}`;
  span.textContent = left < 0 ? `overdue by ${fmtDuration(left)}` : `${fmtDuration(left)} left`;
  span.title = `Due ${fmtTime(span.dataset.due)}`;
}
function tickClocks() {
  document.querySelectorAll('.due[data-due]').forEach(updateDue);
  document.querySelectorAll('[data-since]').forEach((node) => {
    node.textContent = `${fmtDuration(Date.now() - new Date(node.dataset.since).getTime())} ago`;
  });
}

function toast(message, isError) {
  const box = document.getElementById('toast');
  box.textContent = message;
  box.className = isError ? 'show error' : 'show';
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.className = ''; }, 6000);
}

async function api(method, path, body) {
  const init = { method, credentials: 'same-origin', headers: {} };
  if (method !== 'GET') {
    init.headers['Content-Type'] = 'application/json';
    init.headers['X-CSRF-Token'] = state.csrf || '';
    init.body = JSON.stringify(body || {});
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (e) {
    return { ok: false, status: 0, data: { error: 'the console cannot be reached' } };
  }
  let data = {};
  try { data = await response.json(); } catch (e) { /* empty body */ }
  if (response.status === 401 && path !== '/api/sign-in') {
    signedOut();
  }
  return { ok: response.ok, status: response.status, data };
}

function show(viewId) {
  for (const id of ['sign-in-view', 'queue-view', 'referral-view', 'overview-view']) {
    document.getElementById(id).hidden = id !== viewId;
  }
  for (const link of document.querySelectorAll('#nav a')) {
    const current = (viewId === 'queue-view' && link.id === 'nav-queue') ||
        (viewId === 'overview-view' && link.id === 'nav-overview');
    if (current) link.setAttribute('aria-current', 'page'); else link.removeAttribute('aria-current');
  }
}

// --- session -----------------------------------------------------------------

function signedIn(data) {
  state.user = data.user;
  state.csrf = data.csrf_token;
  state.queues = data.queues || [];
  document.getElementById('nav').hidden = false;
  const who = document.getElementById('who');
  who.hidden = false;
  who.textContent = `Signed in as ${state.user}`;
  document.getElementById('sign-out').hidden = false;
  openLiveStreams();
  route();
}

function signedOut() {
  state.user = null;
  lastQueues = null;
  state.csrf = null;
  for (const source of state.sources) source.close();
  state.sources = [];
  document.getElementById('nav').hidden = true;
  document.getElementById('who').hidden = true;
  document.getElementById('sign-out').hidden = true;
  document.getElementById('live').hidden = true;
  show('sign-in-view');
  document.getElementById('sign-in-user').focus();
}

async function signIn(event) {
  event.preventDefault();
  const user = document.getElementById('sign-in-user').value.trim();
  const passwordBox = document.getElementById('sign-in-password');
  const result = await api('POST', '/api/sign-in', { user, password: passwordBox.value });
  passwordBox.value = '';
  if (!result.ok) {
    document.getElementById('sign-in-error').textContent = result.data.error || 'Sign-in failed';
    return;
  }
  document.getElementById('sign-in-error').textContent = '';
  if (!location.hash || location.hash === '#/sign-in') location.hash = '#/queue';
  signedIn(result.data);
}

async function signOut() {
  await api('POST', '/api/sign-out', {});
  signedOut();
}

// --- live updates --------------------------------------------------------------

let refreshPending = null;
function scheduleRefresh() {
  // Several events in a burst cause one re-read.
  if (refreshPending) return;
  refreshPending = setTimeout(() => {
    refreshPending = null;
    const hash = location.hash || '#/queue';
    if (hash.startsWith('#/queue')) loadQueues();
    else if (hash.startsWith('#/referral/')) loadReferral(decodeURIComponent(hash.slice(11)), true);
  }, 150);
}

function openLiveStreams() {
  for (const source of state.sources) source.close();
  // One stream for every queue: a browser keeps at most six connections to
  // a site, and the page's own requests need them.
  const live = document.getElementById('live');
  live.hidden = false;
  const update = (open) => {
    live.textContent = open ? '● Live' : '○ Reconnecting…';
    live.className = open ? 'live on' : 'live off';
  };
  const source = new EventSource('/api/events');
  source.onopen = () => { update(true); scheduleRefresh(); };
  source.onerror = () => update(false);
  source.onmessage = () => scheduleRefresh();
  state.sources = [source];
  update(false);
}

// --- queue screen --------------------------------------------------------------

function markerList(entry) {
  const markers = [];
  if (entry.immediate_risk) markers.push(el('span', { class: 'marker risk', text: 'Immediate risk' }));
  if (entry.repeated_concern) markers.push(el('span', { class: 'marker repeat', text: 'Repeated concern' }));
  if (entry.child_voice_missing) markers.push(el('span', { class: 'marker voice', text: 'No child\u2019s voice' }));
  if (entry.delivery_attempts > 0) {
    markers.push(el('span', { class: 'marker', text: `Delivered ${entry.delivery_attempts}\u00d7 before` }));
  }
  return markers;
}

function childrenText(children) {
  return (children || []).map((c) => `${c.initials} (${c.age_years < 0 ? 'unborn' : c.age_years})`).join(', ');
}

function queueTable(queue) {
  const caption = el('caption', {}, `${queue.queue}: ${queue.ready_count} waiting`);
  const head = el('thead', {}, el('tr', {},
    ['#', 'Referral', 'Children', 'Referrer', 'Concerns', 'Received', 'Decision due', 'Markers']
      .map((h) => el('th', { scope: 'col', text: h }))));
  const rows = queue.entries.map((entry, index) => el('tr', {
    class: entry.immediate_risk ? 'row-risk' : (entry.repeated_concern ? 'row-repeat' : ''),
    'data-referral': entry.referral_id,
  },
  el('td', { text: index + 1 }),
  el('td', {}, el('a', { href: `#/referral/${encodeURIComponent(entry.referral_id)}`,
    'data-focus-key': `ref:${entry.referral_id}`, text: entry.referral_id })),
  el('td', { text: childrenText(entry.children) }),
  el('td', { text: words(entry.agency_type) }),
  el('td', { text: (entry.concerns || []).map(words).join(', ') }),
  el('td', {}, el('span', { 'data-since': entry.received_at, title: fmtTime(entry.received_at) })),
  el('td', {}, dueCell(entry.due_at)),
  el('td', {}, markerList(entry))));
  const body = el('tbody', {}, rows.length ? rows :
    el('tr', {}, el('td', { colspan: 8, class: 'empty', text: 'Nothing waiting' })));
  return el('div', { class: 'table-wrap' }, el('table', { class: 'queue' }, caption, head, body));
}

function claimedList(queue) {
  if (!queue.claimed.length) return null;
  return el('div', { class: 'claimed' },
    el('h3', { text: 'In triage' }),
    el('ul', {}, queue.claimed.map((c) => el('li', {},
      el('a', { href: `#/referral/${encodeURIComponent(c.referral_id)}`, text: c.referral_id }),
      ` claimed by ${c.holder === state.user ? 'you' : c.holder}`,
      c.lease_expires_at ? ` until ${fmtTime(c.lease_expires_at)}` : ' (outside the console)'))));
}

async function claimNext(queue) {
  const result = await api('POST', `/api/queues/${encodeURIComponent(queue)}/claim`, {});
  if (!result.ok) { toast(result.data.error || 'Claim failed', true); return; }
  location.hash = `#/referral/${encodeURIComponent(result.data.referral_id)}`;
}

let lastQueues = null;
async function loadQueues() {
  const result = await api('GET', '/api/queues');
  if (!result.ok) { if (result.status !== 401) toast(result.data.error || 'Cannot list the queues', true); return; }
  // Redrawn only when something changed, so a live update neither moves a
  // keyboard user's focus nor swaps a button out from under a click.
  const fingerprint = JSON.stringify(result.data.queues);
  const container = document.getElementById('queues');
  if (fingerprint === lastQueues && container.childElementCount > 0) return;
  lastQueues = fingerprint;
  const focusKey = document.activeElement && document.activeElement.dataset
    ? document.activeElement.dataset.focusKey : undefined;
  container.replaceChildren(...result.data.queues.map((queue) => el('section', {
    class: 'queue-block', 'aria-label': `Queue ${queue.queue}`, 'data-queue': queue.queue,
  },
  el('div', { class: 'queue-head' },
    el('h2', { text: queue.queue }),
    el('button', {
      type: 'button', class: 'primary', disabled: queue.entries.length === 0,
      'data-focus-key': `claim:${queue.queue}`, onclick: () => claimNext(queue.queue),
    }, `Claim next from ${queue.queue}`)),
  queueTable(queue),
  queue.more ? el('p', { class: 'hint', text: 'Only the first 200 are listed.' }) : null,
  claimedList(queue))));
  if (focusKey) {
    const again = [...container.querySelectorAll('[data-focus-key]')].find((n) => n.dataset.focusKey === focusKey);
    if (again) again.focus();
  }
  tickClocks();
}

// --- referral screen -------------------------------------------------------------

function field(label, value) {
  if (value === undefined || value === null || value === '' ||
      (Array.isArray(value) && value.length === 0)) return null;
  return [el('dt', { text: label }), el('dd', { text: Array.isArray(value) ? value.join(', ') : value })];
}

function addressText(a) {
  if (!a) return '';
  return [...(a.lines || []), a.town, a.postcode].filter(Boolean).join(', ');
}

function personCard(p, title) {
  return el('div', { class: 'card person' },
    el('h4', { text: `${p.given_name || ''} ${p.family_name || ''}`.trim() || title }),
    el('dl', {}, field('Relationship', p.relationship), field('Date of birth', dateOf(p.date_of_birth)),
      field('Address', addressText(p.address)), field('Notes', p.notes)));
}

function childCard(child, index, links) {
  const history = links.filter((l) => l.child_index === index);
  return el('div', { class: 'card child' },
    el('h4', { text: `${child.given_name} ${child.family_name}`.trim() }),
    el('dl', {},
      field('Date of birth', dateOf(child.date_of_birth)),
      field('Expected due date', dateOf(child.expected_due_date)),
      field('Sex', words(child.sex)), field('Gender', child.gender),
      field('NHS number', child.nhs_number), field('Address', addressText(child.address)),
      field('School', child.school), field('First language', child.first_language),
      field('Interpreter needed', child.interpreter_needed ? 'yes' : ''),
      field('Disability or special needs', child.disability_or_special_needs),
      field('Parental responsibility', child.parental_responsibility),
      field('Where the child is now', child.current_whereabouts),
      field('Care leaver', child.care_leaver ? 'yes' : '')),
    el('h5', { text: `Earlier referrals (${history.length})` }),
    history.length ? el('table', { class: 'history' },
      el('thead', {}, el('tr', {}, ['Referral', 'Received', 'Referrer', 'Matched by', 'Outcome']
        .map((h) => el('th', { scope: 'col', text: h })))),
      el('tbody', {}, history.map((l) => el('tr', {},
        el('td', { text: l.referral_id }), el('td', { text: fmtTime(l.received_at) }),
        el('td', { text: words(l.agency_type) }), el('td', { text: words(l.matched_by) }),
        el('td', { text: l.decision && l.decision !== 'DECISION_UNSPECIFIED' ? words(l.decision) : 'not decided yet' })))))
      : el('p', { class: 'hint', text: 'None in the broker\u2019s window.' }));
}

const DECISIONS = ['no-further-action', 'information-and-advice', 'early-help',
  'child-in-need-assessment', 'strategy-discussion', 'pass-to-allocated-worker',
  'transfer-to-another-authority'];

function actionForms(id, data) {
  const decideForm = el('form', { class: 'card', id: 'decide-form' },
    el('h3', { text: 'Record the decision' }),
    el('label', { for: 'decision', text: 'Outcome' }),
    el('select', { id: 'decision', name: 'decision', required: true },
      el('option', { value: '', text: 'Choose an outcome…' }),
      DECISIONS.map((d) => el('option', { value: d, text: d.replace(/-/g, ' ') }))),
    el('label', { for: 'rationale', text: 'Rationale (recorded with the decision)' }),
    el('textarea', { id: 'rationale', name: 'rationale', rows: 5, required: true, maxlength: 10000 }),
    el('label', { for: 'feedback', text: 'Feedback for the referrer (no other family\u2019s details)' }),
    el('textarea', { id: 'feedback', name: 'feedback', rows: 3, maxlength: 2000 }),
    el('button', { type: 'submit', class: 'primary', text: 'Record decision' }));
  decideForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    const result = await api('POST', `/api/referrals/${encodeURIComponent(id)}/decide`, {
      decision: decideForm.decision.value, rationale: decideForm.rationale.value,
      feedback: decideForm.feedback.value,
    });
    if (!result.ok) { toast(result.data.error || 'Decision not recorded', true); return; }
    toast(`Decision recorded for ${id}`);
    loadReferral(id);
  });

  const releaseForm = el('form', { class: 'card', id: 'release-form' },
    el('h3', { text: 'Release back to the queue' }),
    el('label', { for: 'release-reason', text: 'Reason (kept in the history)' }),
    el('textarea', { id: 'release-reason', name: 'reason', rows: 2, required: true, maxlength: 500 }),
    el('button', { type: 'submit', text: 'Release' }));
  releaseForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    const result = await api('POST', `/api/referrals/${encodeURIComponent(id)}/release`,
      { reason: releaseForm.reason.value });
    if (!result.ok) { toast(result.data.error || 'Release failed', true); return; }
    toast(`${id} released back to its queue`);
    location.hash = '#/queue';
  });

  const extend = el('button', {
    type: 'button',
    onclick: async () => {
      const result = await api('POST', `/api/referrals/${encodeURIComponent(id)}/extend`, { lease_seconds: 1800 });
      if (!result.ok) { toast(result.data.error || 'Extension refused', true); return; }
      toast(`Claim extended until ${fmtTime(result.data.lease_expires_at)}`);
      loadReferral(id);
    },
  }, 'Extend claim by 30 minutes');
  return el('div', { class: 'actions' }, decideForm, releaseForm,
    el('div', { class: 'card' }, el('h3', { text: 'Claim' }),
      el('p', {}, `Yours until ${fmtTime(data.lease_expires_at)}.`), extend));
}

function fullReferral(id, data) {
  const claim = data.claim;
  const r = claim.referral;
  // The claimed entry counts this delivery; the marker means earlier ones.
  const entry = { ...claim.entry, delivery_attempts: Math.max(0, (claim.delivery_attempt || 1) - 1) };
  const voice = r.child_voice || {};
  const consent = r.consent || {};
  const referrer = r.referrer || {};
  return [
    el('div', { class: 'ref-head' },
      el('h1', { id: 'referral-heading', text: `Referral ${id}` }),
      el('div', { class: 'markers' }, markerList(entry)),
      el('p', {}, `Queue ${data.queue} · received `, el('span', { 'data-since': entry.received_at }),
        ' · decision ', dueCell(entry.due_at))),
    el('p', { class: 'claim-note mine', role: 'status' }, `Claimed by you until ${fmtTime(data.lease_expires_at)}`),
    el('section', { class: 'voice', 'aria-labelledby': 'voice-heading' },
      el('h2', { id: 'voice-heading', text: 'The child\u2019s voice' }),
      voice.words ? el('blockquote', { text: voice.words }) :
        el('p', { class: 'missing', text: voice.not_captured_reason ?
          `Not captured: ${voice.not_captured_reason}` : 'Not captured, and no reason was given.' })),
    el('div', { class: 'grid' },
      el('section', { class: 'card' },
        el('h2', { text: 'Concern' }),
        el('dl', {}, field('Categories', (r.concerns || []).map(words)),
          field('Immediate risk', r.immediate_risk ? 'yes' : 'no'),
          field('Children in Need factors', r.cin_factor_codes)),
        el('h3', { text: 'What happened' }), el('p', { class: 'prose', text: r.description }),
        r.background ? [el('h3', { text: 'Background' }), el('p', { class: 'prose', text: r.background })] : null,
        r.support_already_given ? [el('h3', { text: 'Support already given' }),
          el('p', { class: 'prose', text: r.support_already_given })] : null,
        r.hoped_for_outcome ? [el('h3', { text: 'Hoped-for outcome' }),
          el('p', { class: 'prose', text: r.hoped_for_outcome })] : null),
      el('section', { class: 'card' },
        el('h2', { text: 'Consent' }),
        el('dl', {}, field('Consent', words(consent.status)),
          field('Family aware', consent.family_aware ? 'yes' : 'no'),
          field('Reason shared without consent', consent.reason_shared_without_consent)),
        el('h2', { text: 'Referrer' }),
        el('dl', {}, field('Agency', words(referrer.agency_type)), field('Organisation', referrer.organisation),
          field('Name', referrer.name), field('Role', referrer.role), field('Phone', referrer.phone),
          field('Email', referrer.email), field('Their reference', r.referrer_reference),
          field('Identity protected', referrer.protect_identity ? 'yes: do not tell the family' : '')))),
    el('section', {}, el('h2', { text: 'Children and their history' }),
      el('div', { class: 'grid' }, (r.children || []).map((c, i) => childCard(c, i, claim.history || [])))),
    (r.household_members || []).length ? el('section', {}, el('h2', { text: 'Household' }),
      el('div', { class: 'grid' }, r.household_members.map((p) => personCard(p, 'Household member')))) : null,
    (r.alleged_perpetrators || []).length ? el('section', {}, el('h2', { text: 'Alleged perpetrators' }),
      el('div', { class: 'grid' }, r.alleged_perpetrators.map((p) => personCard(p, 'Alleged perpetrator')))) : null,
    el('section', {}, el('h2', { text: 'Acknowledgement timeline' }),
      el('ol', { class: 'timeline' }, (data.timeline || []).map((t) => el('li', {},
        el('time', { datetime: t.at, text: fmtTime(t.at) }), ` ${t.what}`, t.by ? ` — ${t.by}` : '')))),
    actionForms(id, data),
  ];
}

function summaryOf(entry) {
  if (!entry) return null;
  return el('dl', { class: 'card' },
    field('Children', childrenText(entry.children)),
    field('Referrer', words(entry.agency_type)),
    field('Concerns', (entry.concerns || []).map(words)),
    field('Received', fmtTime(entry.received_at)),
    [el('dt', { text: 'Decision due' }), el('dd', {}, dueCell(entry.due_at))],
    [el('dt', { text: 'Markers' }), el('dd', {}, markerList(entry))]);
}

async function loadReferral(id, quiet) {
  const view = document.getElementById('referral-view');
  const result = await api('GET', `/api/referrals/${encodeURIComponent(id)}`);
  if (!result.ok) {
    if (result.status === 401) return;
    view.replaceChildren(el('h1', { id: 'referral-heading', text: `Referral ${id}` }),
      el('p', { class: 'error', role: 'alert', text: result.data.error || 'Cannot show this referral' }),
      el('p', {}, el('a', { href: '#/queue', text: 'Back to the queue' })));
    return;
  }
  const data = result.data;
  let content;
  if (data.status === 'claimed_by_you') {
    // A live update must not wipe what the worker is typing.
    if (quiet && document.getElementById('decide-form')) return;
    content = fullReferral(id, data);
  } else if (data.status === 'claimed_by_other') {
    content = [el('h1', { id: 'referral-heading', text: `Referral ${id}` }),
      el('p', { class: 'claim-note other', role: 'status' },
        `Claimed by ${data.holder}`,
        data.lease_expires_at ? ` until ${fmtTime(data.lease_expires_at)}` : ' (outside the console)',
        '. Only they can decide or release it.'),
      summaryOf(data.entry)];
  } else if (data.status === 'waiting') {
    const next = data.position === 1;
    content = [el('h1', { id: 'referral-heading', text: `Referral ${id}` }),
      el('p', { class: 'claim-note' },
        `Waiting in ${data.queue}, number ${data.position} of ${data.ready_count} in delivery order. `,
        'Claiming gives you the full referral and the children\u2019s history.'),
      summaryOf(data.entry),
      el('button', { type: 'button', class: 'primary', onclick: () => claimNext(data.queue) },
        next ? 'Claim this referral (next in line)' : `Claim next from ${data.queue}`),
      next ? null : el('p', { class: 'hint', text: 'Referrals are claimed in delivery order, so the one at the head of the queue comes first.' })];
  } else {
    content = [el('h1', { id: 'referral-heading', text: `Referral ${id}` }),
      el('p', { class: 'claim-note', role: 'status' }, `${data.outcome} by ${data.by} at ${fmtTime(data.at)}.`)];
  }
  view.replaceChildren(...content.flat().filter(Boolean),
    el('p', {}, el('a', { href: '#/queue', text: 'Back to the queue' })));
  tickClocks();
}

// --- overview ----------------------------------------------------------------

const CHART_COLOURS = ['#b3261e', '#1d4ed8', '#047857', '#7c3aed', '#b45309'];

function depthChart(history) {
  const width = 640; const height = 180; const pad = 30;
  const series = Object.entries(history);
  const points = series.flatMap(([, s]) => s);
  const chart = svg('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', class: 'chart',
    'aria-label': 'Queue depth over the last hours' });
  if (points.length === 0) {
    chart.append(svg('text', { x: pad, y: height / 2, text: 'No samples yet' }));
    return chart;
  }
  const times = points.map((p) => new Date(p.at).getTime());
  const t0 = Math.min(...times); const t1 = Math.max(...times, t0 + 1);
  const maxDepth = Math.max(1, ...points.map((p) => Number(p.ready)));
  const x = (t) => pad + (width - 2 * pad) * (t - t0) / (t1 - t0);
  const y = (v) => height - pad - (height - 2 * pad) * v / maxDepth;
  chart.append(svg('line', { x1: pad, y1: height - pad, x2: width - pad, y2: height - pad, class: 'axis' }));
  chart.append(svg('line', { x1: pad, y1: pad, x2: pad, y2: height - pad, class: 'axis' }));
  chart.append(svg('text', { x: 2, y: pad + 4, text: String(maxDepth), class: 'tick' }));
  chart.append(svg('text', { x: 2, y: height - pad + 4, text: '0', class: 'tick' }));
  chart.append(svg('text', { x: pad, y: height - 8, text: fmtTime(new Date(t0).toISOString()), class: 'tick' }));
  chart.append(svg('text', { x: width - pad, y: height - 8, 'text-anchor': 'end', text: 'now', class: 'tick' }));
  series.forEach(([queue, samples], i) => {
    const colour = CHART_COLOURS[i % CHART_COLOURS.length];
    chart.append(svg('polyline', {
      fill: 'none', stroke: colour, 'stroke-width': 2,
      points: samples.map((p) => `${x(new Date(p.at).getTime()).toFixed(1)},${y(Number(p.ready)).toFixed(1)}`).join(' '),
    }, svg('title', { text: queue })));
  });
  return chart;
}

async function loadOverview() {
  const view = document.getElementById('overview-view');
  const result = await api('GET', '/api/overview');
  if (!result.ok) {
    if (result.status === 401) return;
    view.replaceChildren(el('h1', { id: 'overview-heading', text: 'Overview' }),
      el('p', { class: 'error', role: 'alert', text: result.status === 403 ?
        'The console\u2019s broker certificate may not read queue statistics (it needs the ops role).' :
        (result.data.error || 'Cannot read the statistics') }));
    return;
  }
  const data = result.data;
  // The figures just read end each line, so the chart agrees with the table.
  for (const q of data.queues) {
    (data.history[q.queue] = data.history[q.queue] || []).push({ at: data.at, ready: q.ready_count });
  }
  const rows = data.queues.map((q) => el('tr', {},
    el('th', { scope: 'row', text: q.queue }),
    el('td', { text: q.ready_count }), el('td', { text: q.claimed_count }),
    el('td', { class: Number(q.overdue_count) > 0 ? 'bad' : '', text: q.overdue_count }),
    el('td', { text: q.due_within_hour_count }),
    el('td', { class: Number(q.dead_letter_count) > 0 ? 'bad' : '', text: q.dead_letter_count }),
    el('td', { text: q.oldest_ready_age_seconds > 0 ? fmtDuration(q.oldest_ready_age_seconds * 1000) : '–' })));
  const legend = el('ul', { class: 'legend' }, Object.keys(data.history).map((queue, i) =>
    el('li', {}, el('span', { class: `swatch swatch-${i % CHART_COLOURS.length}` }), queue)));
  view.replaceChildren(
    el('h1', { id: 'overview-heading', text: 'Overview' }),
    el('p', { class: 'hint', text: `Figures at ${fmtTime(data.at)}.` }),
    el('div', { class: 'table-wrap' }, el('table', { class: 'queue' },
      el('thead', {}, el('tr', {}, ['Queue', 'Waiting', 'Claimed', 'Overdue', 'Due within 1h', 'Dead letters', 'Oldest waiting']
        .map((h) => el('th', { scope: 'col', text: h })))),
      el('tbody', {}, rows))),
    el('h2', { text: `Waiting referrals over the last ${data.retention_hours} hours` }),
    el('p', { class: 'hint', text: `Sampled every ${data.sample_interval_seconds} s by the console.` }),
    depthChart(data.history), legend);
}

// --- routing -----------------------------------------------------------------

function route() {
  if (!state.user) { show('sign-in-view'); return; }
  const hash = location.hash || '#/queue';
  if (hash.startsWith('#/referral/')) {
    show('referral-view');
    loadReferral(decodeURIComponent(hash.slice(11)));
  } else if (hash.startsWith('#/overview')) {
    show('overview-view');
    loadOverview();
  } else {
    show('queue-view');
    loadQueues();
  }
  document.getElementById('main').focus({ preventScroll: true });
}

async function start() {
  document.getElementById('sign-in-form').addEventListener('submit', signIn);
  document.getElementById('sign-out').addEventListener('click', signOut);
  window.addEventListener('hashchange', route);
  setInterval(tickClocks, 1000);
  setInterval(() => { if (state.user && (location.hash || '').startsWith('#/overview')) loadOverview(); }, 30000);
  const result = await api('GET', '/api/session');
  if (result.ok) signedIn(result.data); else signedOut();
}

document.addEventListener('DOMContentLoaded', start);
