// spendgate dashboard: plain JavaScript, no build step, no external requests.
//
// The page is served with a strict Content-Security-Policy: no inline scripts or
// styles, so everything below builds DOM nodes with createElement (never innerHTML
// with data) and sets styles only through element.style.
//
// Security: the wallet key is sent once (POST /api/session) and never stored; the
// session lives in an HttpOnly cookie; the CSRF token is kept in memory only and sent
// as x-csrf-token on every request that changes something.

'use strict';

(() => {
  // ---------------------------------------------------------------------------
  // DOM helpers
  // ---------------------------------------------------------------------------

  const SVG_NS = 'http://www.w3.org/2000/svg';
  const PROPS = new Set(['value', 'checked', 'disabled', 'indeterminate', 'selected', 'required', 'readOnly']);

  function setAttrs(el, attrs, isSvg) {
    if (!attrs) return;
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') {
        const cls = Array.isArray(v) ? v.filter(Boolean).join(' ') : v;
        if (cls) el.setAttribute('class', cls);
      } else if (k === 'text') {
        el.textContent = v;
      } else if (k === 'dataset') {
        for (const [dk, dv] of Object.entries(v)) el.dataset[dk] = dv;
      } else if (k.startsWith('on') && typeof v === 'function') {
        el.addEventListener(k.slice(2).toLowerCase(), v);
      } else if (!isSvg && PROPS.has(k)) {
        el[k] = v;
      } else if (v === true) {
        el.setAttribute(k, '');
      } else {
        el.setAttribute(k, String(v));
      }
    }
  }

  function append(el, children) {
    for (const c of children) {
      if (c === null || c === undefined || c === false || c === true) continue;
      if (Array.isArray(c)) append(el, c);
      else if (c instanceof Node) el.appendChild(c);
      else el.appendChild(document.createTextNode(String(c)));
    }
  }

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    setAttrs(el, attrs, false);
    append(el, children);
    return el;
  }

  function s(tag, attrs, ...children) {
    const el = document.createElementNS(SVG_NS, tag);
    setAttrs(el, attrs, true);
    append(el, children);
    return el;
  }

  function clear(el) {
    while (el.firstChild) el.removeChild(el.firstChild);
    return el;
  }

  function replace(el, ...children) {
    clear(el);
    append(el, children);
    return el;
  }

  let uidCounter = 0;
  const uid = (prefix = 'id') => `${prefix}-${++uidCounter}`;

  const $ = (sel, root = document) => root.querySelector(sel);

  // Icons: 24x24 stroke paths.
  const ICONS = {
    plus: ['M12 5v14', 'M5 12h14'],
    search: ['M11 18a7 7 0 1 0 0-14 7 7 0 0 0 0 14z', 'M20 20l-3.6-3.6'],
    copy: ['M9 9h10a1 1 0 0 1 1 1v10a1 1 0 0 1-1 1H9a1 1 0 0 1-1-1V10a1 1 0 0 1 1-1z', 'M5 15H4a1 1 0 0 1-1-1V4a1 1 0 0 1 1-1h10a1 1 0 0 1 1 1v1'],
    check: ['M5 12.5l4.5 4.5L19 7.5'],
    pause: ['M9 5v14', 'M15 5v14'],
    play: ['M7 4.5v15l12.5-7.5z'],
    rotate: ['M20 12a8 8 0 1 1-2.34-5.66', 'M20 4v5h-5'],
    refresh: ['M20 12a8 8 0 1 1-2.34-5.66', 'M20 4v5h-5'],
    trash: ['M4 7h16', 'M10 11v6', 'M14 11v6', 'M6 7l1 13h10l1-13', 'M9 7V4h6v3'],
    edit: ['M4 20h4L19 9l-4-4L4 16v4z', 'M13.5 6.5l4 4'],
    download: ['M12 4v11', 'M7 10l5 5 5-5', 'M5 20h14'],
    left: ['M15 6l-6 6 6 6'],
    right: ['M9 6l6 6-6 6'],
    back: ['M19 12H5', 'M11 6l-6 6 6 6'],
    x: ['M6 6l12 12', 'M18 6L6 18'],
    alert: ['M12 3l9.5 17h-19z', 'M12 10v4', 'M12 17h.01'],
    info: ['M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18z', 'M12 11v5', 'M12 8h.01'],
    key: ['M8 19a4 4 0 1 0 0-8 4 4 0 0 0 0 8z', 'M10.8 12.2L19 4', 'M16 7l2.5 2.5', 'M14 9l2 2'],
    lock: ['M6 11h12v9H6z', 'M8.5 11V8a3.5 3.5 0 0 1 7 0v3'],
    eye: ['M2 12s3.6-7 10-7 10 7 10 7-3.6 7-10 7S2 12 2 12z', 'M12 15a3 3 0 1 0 0-6 3 3 0 0 0 0 6z'],
    eyeOff: ['M3 3l18 18', 'M10.6 5.1A10.6 10.6 0 0 1 12 5c6.4 0 10 7 10 7a17.6 17.6 0 0 1-3.2 4.1', 'M6.6 6.6C3.7 8.4 2 12 2 12s3.6 7 10 7a9.6 9.6 0 0 0 4.4-1.1', 'M9.9 9.9a3 3 0 0 0 4.2 4.2'],
    terminal: ['M4 5h16v14H4z', 'M8 10l2.5 2L8 14', 'M13 15h3'],
    chart: ['M4 20V10', 'M10 20V4', 'M16 20v-7', 'M22 20H2'],
    logout: ['M15 4h4v16h-4', 'M10 8l-4 4 4 4', 'M6 12h11'],
    bell: ['M6 8a6 6 0 0 1 12 0c0 7 3 9 3 9H3s3-2 3-9', 'M10.3 21a1.94 1.94 0 0 0 3.4 0'],
    send: ['M22 2L11 13', 'M22 2l-7 20-4-9-9-4z'],
  };

  function icon(name, attrs = {}) {
    const paths = ICONS[name] || [];
    return s(
      'svg',
      {
        viewBox: '0 0 24 24',
        fill: 'none',
        stroke: 'currentColor',
        'stroke-width': 2,
        'stroke-linecap': 'round',
        'stroke-linejoin': 'round',
        'aria-hidden': 'true',
        focusable: 'false',
        ...attrs,
      },
      paths.map((d) => s('path', { d })),
    );
  }

  // ---------------------------------------------------------------------------
  // Formatting
  // ---------------------------------------------------------------------------

  const LOCALE = 'en-US';
  const intFmt = new Intl.NumberFormat(LOCALE, { maximumFractionDigits: 0 });
  const rtf = new Intl.RelativeTimeFormat(LOCALE, { numeric: 'auto' });

  function fmtInt(n) {
    const x = Number(n);
    return Number.isFinite(x) ? intFmt.format(x) : '—';
  }

  /** Dollars with cents; tiny non-zero amounts keep three significant digits ($0.0042). */
  function fmtUsd(v) {
    const x = Number(v);
    if (!Number.isFinite(x)) return '—';
    if (x === 0) return '$0.00';
    const sign = x < 0 ? '-' : '';
    const abs = Math.abs(x);
    if (abs >= 0.01) {
      return sign + '$' + abs.toLocaleString(LOCALE, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
    }
    const decimals = Math.min(9, 2 - Math.floor(Math.log10(abs)));
    let str = abs.toFixed(decimals).replace(/0+$/, '');
    if (/\.\d$/.test(str)) str += '0';
    return sign + '$' + str;
  }

  /** Axis labels: short money values. */
  function fmtUsdAxis(v, step) {
    if (v === 0) return '$0';
    if (v >= 1000) return '$' + (v / 1000).toLocaleString(LOCALE, { maximumFractionDigits: 1 }) + 'k';
    const decimals = Math.max(0, Math.min(8, -Math.floor(Math.log10(step)) + (String(step).includes('25') ? 1 : 0)));
    return '$' + v.toFixed(decimals);
  }

  function fmtCompact(v) {
    if (v >= 1e6) return (v / 1e6).toLocaleString(LOCALE, { maximumFractionDigits: 1 }) + 'M';
    if (v >= 1e4) return (v / 1e3).toLocaleString(LOCALE, { maximumFractionDigits: 1 }) + 'k';
    return fmtInt(v);
  }

  function fmtLatency(ms) {
    const x = Number(ms);
    if (!Number.isFinite(x)) return '—';
    if (x < 1000) return `${Math.round(x)} ms`;
    return `${(x / 1000).toLocaleString(LOCALE, { maximumFractionDigits: 1, minimumFractionDigits: 1 })} s`;
  }

  function fmtAbs(iso) {
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return '';
    return d.toLocaleString(LOCALE, {
      weekday: 'short',
      year: 'numeric',
      month: 'short',
      day: 'numeric',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
      timeZoneName: 'short',
    });
  }

  function fmtDate(iso) {
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return '';
    return d.toLocaleDateString(LOCALE, { year: 'numeric', month: 'short', day: 'numeric' });
  }

  function fmtDay(day, withYear = false) {
    const d = new Date(`${day}T00:00:00Z`);
    return d.toLocaleDateString(LOCALE, {
      month: 'short',
      day: 'numeric',
      timeZone: 'UTC',
      ...(withYear ? { year: 'numeric' } : {}),
    });
  }

  function relTime(iso) {
    const t = Date.parse(iso);
    if (Number.isNaN(t)) return '—';
    const diff = (t - Date.now()) / 1000;
    const abs = Math.abs(diff);
    if (abs < 45) return diff <= 0 ? 'just now' : 'in a few seconds';
    const units = [
      ['minute', 60, 45 * 60],
      ['hour', 3600, 22 * 3600],
      ['day', 86400, 26 * 86400],
      ['month', 30 * 86400, 320 * 86400],
      ['year', 365 * 86400, Infinity],
    ];
    for (const [unit, secs, limit] of units) {
      if (abs < limit) return rtf.format(Math.round(diff / secs), unit);
    }
    return fmtDate(iso);
  }

  /** A <time> with relative text, the absolute time in its title; kept fresh. */
  function timeEl(iso, { never = 'never' } = {}) {
    if (!iso) return h('span', { class: 'muted' }, never);
    return h('time', { datetime: iso, title: fmtAbs(iso), dataset: { rel: '1' } }, relTime(iso));
  }

  setInterval(() => {
    for (const t of document.querySelectorAll('time[data-rel]')) t.textContent = relTime(t.dateTime);
  }, 30_000);

  const CYCLE_PER = { daily: 'per day', weekly: 'per week', monthly: 'per month', total: 'in total' };
  const CYCLE_NAME = { daily: 'Daily', weekly: 'Weekly', monthly: 'Monthly', total: 'Total (never resets)' };
  const FORMAT_NAME = { openai: 'OpenAI', anthropic: 'Anthropic' };
  const PROVIDER_NAME = {
    openai: 'OpenAI',
    anthropic: 'Anthropic',
    groq: 'Groq',
    mistral: 'Mistral',
    deepseek: 'DeepSeek',
    xai: 'xAI',
    together: 'Together AI',
    fireworks: 'Fireworks',
    cerebras: 'Cerebras',
    google: 'Google',
    gemini: 'Google Gemini',
  };
  const providerName = (p) => PROVIDER_NAME[p] || (p ? p.charAt(0).toUpperCase() + p.slice(1) : 'Other');

  function keyState(k) {
    if (k.expires_at && Date.parse(k.expires_at) <= Date.now()) return 'expired';
    return k.status === 'paused' ? 'paused' : 'active';
  }

  function statusBadge(k) {
    const st = keyState(k);
    const label = { active: 'Active', paused: 'Paused', expired: 'Expired' }[st];
    const title =
      st === 'expired'
        ? `Expired ${fmtAbs(k.expires_at)}: requests with this key are refused`
        : st === 'paused'
          ? 'Paused: requests with this key are refused until you resume it'
          : 'Active: the key can make requests';
    return h('span', { class: ['badge', `badge-${st}`], title, dataset: { status: st } }, h('span', { class: 'dot', 'aria-hidden': 'true' }), label);
  }

  function formatBadge(k) {
    return h('span', { class: 'badge badge-format', title: `${FORMAT_NAME[k.request_shape] || k.request_shape} API format` }, FORMAT_NAME[k.request_shape] || k.request_shape);
  }

  function rateText(rl) {
    if (!rl) return 'No rate limit';
    const burst = rl.burst === null || rl.burst === undefined ? '' : ` · burst ${fmtInt(rl.burst)}`;
    return `${fmtInt(rl.rpm)} per minute${burst}`;
  }

  function listChips(list, { all, max = 3 }) {
    if (!list) return h('span', null, all);
    if (list.length === 0) return h('span', { class: 'muted' }, 'None');
    const shown = list.slice(0, max);
    const rest = list.length - shown.length;
    return h(
      'span',
      { class: 'chips' },
      shown.map((m) => h('span', { class: 'chip', title: m }, m)),
      rest > 0 ? h('span', { class: 'chip chip-more', title: list.slice(max).join(', ') }, `+${rest} more`) : null,
    );
  }

  // ---------------------------------------------------------------------------
  // State and API
  // ---------------------------------------------------------------------------

  const state = {
    session: null, // {wallet_id, wallet_name, csrf_token, expires_at}
    models: null, // cached catalog for this session
    revealed: null, // {key, secret, reason}: a secret to show once
    keysFilter: { q: '', status: 'all', format: 'all' },
    returnTo: null,
    expiryTimer: null,
  };

  class ApiError extends Error {
    constructor(status, body, { expired = false } = {}) {
      const err = body && body.error;
      const message =
        typeof err === 'string'
          ? err
          : err && err.message
            ? err.message
            : status === 0
              ? 'Could not reach the server. Check your connection and try again.'
              : `The server answered ${status}.`;
      super(message);
      this.status = status;
      this.type = (err && err.type) || null;
      this.param = (err && err.param) || null;
      this.expired = expired;
    }
  }

  async function api(method, path, body, { auth = true } = {}) {
    const headers = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (method !== 'GET' && method !== 'HEAD' && state.session) headers['x-csrf-token'] = state.session.csrf_token;
    let res;
    try {
      res = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: 'same-origin',
        cache: 'no-store',
        redirect: 'error',
      });
    } catch {
      throw new ApiError(0, null);
    }
    let data = null;
    const text = await res.text();
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = null;
      }
    }
    if (res.status === 401 && auth) {
      sessionExpired();
      throw new ApiError(401, data, { expired: true });
    }
    if (!res.ok) throw new ApiError(res.status, data);
    return data;
  }

  const enc = encodeURIComponent;

  async function loadAllKeys() {
    const all = [];
    let cursor = null;
    for (let page = 0; page < 1000; page++) {
      const qs = new URLSearchParams({ limit: '100' });
      if (cursor) qs.set('cursor', cursor);
      const res = await api('GET', `/v1/spend_keys?${qs}`);
      all.push(...(res.data || []));
      if (!res.has_more || !res.next_cursor) break;
      cursor = res.next_cursor;
    }
    return all;
  }

  async function loadModels() {
    if (state.models) return state.models;
    const res = await api('GET', '/v1/models');
    state.models = (res.data || []).slice();
    return state.models;
  }

  // ---------------------------------------------------------------------------
  // Messages: toasts, live announcements
  // ---------------------------------------------------------------------------

  /**
   * A form's field errors. `slot(param, input)` makes the place for a field's error,
   * cleared as soon as the field changes; `show(param, message)` puts an error (an API
   * `param` like `spend_limit.amount` or `thresholds[0]`) next to its field, or the
   * nearest enclosing one, else in `alert`, and returns what to focus (`focusFor(param)`
   * where the field itself cannot take focus); `clear()` empties them all.
   */
  function fieldErrors(focusFor = () => null) {
    const errors = new Map(); // param -> {el, input}
    const alert = h('div', { class: 'form-alert', role: 'alert', hidden: true, tabindex: '-1' });

    function slot(param, inputEl) {
      const el = h('p', { class: 'field-error', id: uid('err'), 'aria-live': 'polite', dataset: { errorFor: param } });
      errors.set(param, { el, input: inputEl });
      if (inputEl) {
        const reset = () => {
          clear(el);
          inputEl.removeAttribute('aria-invalid');
        };
        inputEl.addEventListener('input', reset);
        inputEl.addEventListener('change', reset);
        const prev = inputEl.getAttribute('aria-describedby');
        inputEl.setAttribute('aria-describedby', prev ? `${prev} ${el.id}` : el.id);
      }
      return el;
    }

    function clearAll() {
      alert.hidden = true;
      for (const { el, input } of errors.values()) {
        clear(el);
        if (input) input.removeAttribute('aria-invalid');
      }
    }

    function show(param, message) {
      let p = String(param || '')
        .replace(/\[\d+\]/g, '')
        .replace(/\.\d+(?=\.|$)/g, '');
      while (p && !errors.has(p)) p = p.includes('.') ? p.slice(0, p.lastIndexOf('.')) : '';
      const s = p ? errors.get(p) : null;
      if (!s) {
        replace(alert, icon('alert'), h('span', null, message));
        alert.hidden = false;
        return alert;
      }
      // The API's messages start with the field ("spend_limit.amount: must ..."): next to
      // the field itself that part is noise.
      let text = String(message || '');
      if (param && text.startsWith(`${param}:`)) text = text.slice(param.length + 1).trim();
      text = text.charAt(0).toUpperCase() + text.slice(1);
      replace(s.el, icon('alert'), h('span', null, text));
      if (s.input) s.input.setAttribute('aria-invalid', 'true');
      return s.input && s.input.matches(FOCUSABLE) ? s.input : focusFor(p) || s.el;
    }

    return { errors, alert, slot, show, clear: clearAll };
  }

  /** Shows each `[param, message]` of a form with `showError`, focuses the first field
   * at fault, and announces them all. */
  function reportErrors(errs, showError) {
    let first = null;
    for (const [p, msg] of errs) {
      const target = showError(p, msg);
      first = first || target;
    }
    if (first && first.focus) first.focus();
    announce('The form has errors. ' + errs.map((x) => x[1]).join(' '));
  }

  function announce(msg) {
    const el = $('#announcer');
    el.textContent = '';
    requestAnimationFrame(() => {
      el.textContent = msg;
    });
  }

  function toast(msg, kind = 'ok', ms = 5000) {
    const region = $('#toasts');
    const t = h(
      'div',
      { class: ['toast', `is-${kind}`], role: kind === 'error' ? 'alert' : 'status' },
      icon(kind === 'error' ? 'alert' : kind === 'ok' ? 'check' : 'info'),
      h('span', null, msg),
    );
    region.appendChild(t);
    while (region.children.length > 3) region.firstChild.remove();
    setTimeout(() => t.remove(), ms);
  }

  function busy(btn, on) {
    if (!btn) return;
    btn.classList.toggle('is-busy', on);
    btn.disabled = on;
    if (on) btn.setAttribute('aria-busy', 'true');
    else btn.removeAttribute('aria-busy');
  }

  async function copyText(text) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch {
      const ta = h('textarea', { class: 'visually-hidden', readonly: true, 'aria-hidden': 'true', tabindex: '-1' });
      ta.value = text;
      document.body.appendChild(ta);
      ta.select();
      let ok = false;
      try {
        ok = document.execCommand('copy');
      } catch {
        ok = false;
      }
      ta.remove();
      return ok;
    }
  }

  function copyButton(getText, { label = 'Copy', cls = 'btn btn-sm', what = 'Text', ariaLabel } = {}) {
    const text = h('span', null, label);
    const ic = h('span', { class: 'icon-slot' }, icon('copy'));
    const btn = h('button', { type: 'button', class: cls, 'aria-label': ariaLabel || null }, ic, text);
    let timer = null;
    btn.addEventListener('click', async () => {
      const ok = await copyText(typeof getText === 'function' ? getText() : getText);
      if (ok) {
        replace(ic, icon('check'));
        text.textContent = 'Copied';
        announce(`${what} copied to the clipboard`);
        clearTimeout(timer);
        timer = setTimeout(() => {
          replace(ic, icon('copy'));
          text.textContent = label;
        }, 2000);
      } else {
        toast('Copying failed: select the text and copy it by hand.', 'error');
      }
    });
    return btn;
  }

  // ---------------------------------------------------------------------------
  // Dialogs (native <dialog>: modal, Escape closes; Tab is kept inside)
  // ---------------------------------------------------------------------------

  const FOCUSABLE = 'a[href], button:not([disabled]), input:not([disabled]), select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex="-1"])';

  function openDialog({ title, iconName = 'info', danger = false, body = [], confirmLabel = 'Confirm', confirmClass = 'btn btn-primary', typeToConfirm = null, onConfirm }) {
    const opener = document.activeElement;
    const titleId = uid('dlg-title');
    const descId = uid('dlg-desc');
    const errorEl = h('div', { class: 'form-alert', role: 'alert', hidden: true });
    const confirmBtn = h('button', { type: 'submit', class: confirmClass }, confirmLabel);
    const cancelBtn = h('button', { type: 'button', class: 'btn' }, 'Cancel');
    let confirmInput = null;
    let field = null;
    if (typeToConfirm !== null) {
      const inputId = uid('confirm');
      confirmInput = h('input', {
        id: inputId,
        class: 'input',
        type: 'text',
        autocomplete: 'off',
        spellcheck: 'false',
        autocapitalize: 'off',
      });
      field = h(
        'div',
        { class: 'field' },
        h('label', { class: 'label', for: inputId }, 'Type ', h('strong', null, typeToConfirm), ' to confirm'),
        confirmInput,
      );
      const sync = () => {
        confirmBtn.disabled = confirmInput.value.trim() !== typeToConfirm.trim();
      };
      confirmInput.addEventListener('input', sync);
      sync();
    }
    const form = h(
      'form',
      { method: 'dialog', novalidate: true },
      h(
        'div',
        { class: 'modal-body' },
        h('h2', { id: titleId }, h('span', { class: ['modal-icon', danger && 'danger'] }, icon(iconName)), title),
        h('div', { id: descId }, body.map((p) => (p instanceof Node ? p : h('p', { class: 'modal-text' }, p)))),
        field,
        h('div', { class: 'modal-errors' }, errorEl),
      ),
      h('div', { class: 'modal-foot' }, cancelBtn, confirmBtn),
    );
    const dlg = h('dialog', { class: 'modal', 'aria-labelledby': titleId, 'aria-describedby': descId }, form);
    document.body.appendChild(dlg);

    return new Promise((resolve) => {
      let result = false;
      let working = false;
      const close = () => {
        if (dlg.open) dlg.close();
      };
      dlg.addEventListener('close', () => {
        dlg.remove();
        if (opener && opener.isConnected && typeof opener.focus === 'function') opener.focus();
        resolve(result);
      });
      dlg.addEventListener('cancel', (e) => {
        if (working) e.preventDefault();
      });
      dlg.addEventListener('keydown', (e) => {
        if (e.key !== 'Tab') return;
        const items = [...dlg.querySelectorAll(FOCUSABLE)].filter((el) => el.offsetParent !== null);
        if (!items.length) return;
        const first = items[0];
        const last = items[items.length - 1];
        if (e.shiftKey && document.activeElement === first) {
          e.preventDefault();
          last.focus();
        } else if (!e.shiftKey && document.activeElement === last) {
          e.preventDefault();
          first.focus();
        }
      });
      cancelBtn.addEventListener('click', close);
      form.addEventListener('submit', async (e) => {
        e.preventDefault();
        if (confirmBtn.disabled || working) return;
        working = true;
        errorEl.hidden = true;
        busy(confirmBtn, true);
        cancelBtn.disabled = true;
        try {
          await onConfirm();
          result = true;
          close();
        } catch (err) {
          if (err && err.expired) {
            close();
            return;
          }
          replace(errorEl, icon('alert'), h('span', null, err.message || String(err)));
          errorEl.hidden = false;
        } finally {
          working = false;
          busy(confirmBtn, false);
          cancelBtn.disabled = false;
          if (confirmInput) confirmBtn.disabled = confirmInput.value.trim() !== typeToConfirm.trim();
        }
      });
      dlg.showModal();
      (confirmInput || cancelBtn).focus();
    });
  }

  // ---------------------------------------------------------------------------
  // Shell, session and routing
  // ---------------------------------------------------------------------------

  const main = $('#main');
  let routeSeq = 0;

  function newCtx() {
    const seq = ++routeSeq;
    return { alive: () => seq === routeSeq && !!state.session };
  }

  function setSession(sess) {
    state.session = sess;
    clearTimeout(state.expiryTimer);
    if (!sess) return;
    const ms = Date.parse(sess.expires_at) - Date.now();
    if (Number.isFinite(ms) && ms > 0) {
      state.expiryTimer = setTimeout(() => {
        if (state.session === sess) sessionExpired();
      }, Math.min(ms + 1000, 2 ** 31 - 1));
    }
  }

  function sessionExpired() {
    if (!state.session) return;
    setSession(null);
    state.models = null;
    state.revealed = null;
    state.returnTo = location.hash;
    closeDialogs();
    showSignIn({ message: 'Your session has expired. Sign in again to continue.', kind: 'warn' });
  }

  function closeDialogs() {
    for (const d of document.querySelectorAll('dialog[open]')) d.close();
  }

  function showShell() {
    const bar = $('#topbar');
    bar.hidden = false;
    const name = state.session.wallet_name || 'Wallet';
    replace(
      $('#wallet-chip'),
      h('span', { class: 'avatar', 'aria-hidden': 'true' }, name.trim().charAt(0).toUpperCase() || 'W'),
      h('span', { class: 'wallet-name', title: `${name} (${state.session.wallet_id})` }, name),
    );
  }

  function setNav(which) {
    for (const a of document.querySelectorAll('[data-nav]')) {
      if (a.dataset.nav === which) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
  }

  function pageTitle(t) {
    document.title = `${t} · spendgate`;
  }

  function focusHeading() {
    const h1 = main.querySelector('h1');
    if (h1) {
      h1.setAttribute('tabindex', '-1');
      h1.focus({ preventScroll: true });
    }
    window.scrollTo(0, 0);
  }

  const ROUTES = [
    [/^#\/keys\/?$/, (ctx) => viewKeys(ctx), 'keys'],
    [/^#\/(?:create|keys\/new)$/, (ctx) => viewKeyForm(ctx, null), 'keys'],
    [/^#\/keys\/([^/]+)\/edit$/, (ctx, m) => viewKeyForm(ctx, decodeURIComponent(m[1])), 'keys'],
    [/^#\/keys\/([^/]+)\/key$/, (ctx, m) => viewSecret(ctx, decodeURIComponent(m[1])), 'keys'],
    [/^#\/keys\/([^/]+)$/, (ctx, m) => viewKey(ctx, decodeURIComponent(m[1])), 'keys'],
    [/^#\/usage$/, (ctx, m, params) => viewUsage(ctx, params), 'usage'],
    [/^#\/activity$/, (ctx) => viewActivity(ctx), 'activity'],
    [/^#\/alerts$/, (ctx) => viewAlerts(ctx), 'alerts'],
  ];

  function parseHash() {
    const raw = location.hash || '';
    const q = raw.indexOf('?');
    return { path: q < 0 ? raw : raw.slice(0, q), params: new URLSearchParams(q < 0 ? '' : raw.slice(q + 1)) };
  }

  function route() {
    if (!state.session) {
      showSignIn({});
      return;
    }
    const { path, params } = parseHash();
    if (state.revealed && !/\/key$/.test(path)) state.revealed = null;
    for (const [re, view, nav] of ROUTES) {
      const m = re.exec(path);
      if (!m) continue;
      showShell();
      setNav(nav);
      closeDialogs();
      const ctx = newCtx();
      view(ctx, m, params);
      return;
    }
    location.replace('#/keys');
  }

  window.addEventListener('hashchange', route);

  function go(hash) {
    if (location.hash === hash) route();
    else location.hash = hash;
  }

  // ---------------------------------------------------------------------------
  // Views: sign-in
  // ---------------------------------------------------------------------------

  function showSignIn({ message = null, kind = 'info' }) {
    ++routeSeq;
    $('#topbar').hidden = true;
    pageTitle('Sign in');
    const inputId = 'wallet-key';
    const errId = 'wallet-key-error';
    const hintId = 'wallet-key-hint';
    const input = h('input', {
      id: inputId,
      name: 'wallet_key',
      class: 'input mono',
      type: 'password',
      autocomplete: 'off',
      autocapitalize: 'off',
      spellcheck: 'false',
      placeholder: 'lava_wk_…',
      required: true,
      'aria-describedby': `${hintId} ${errId}`,
    });
    const errorEl = h('p', { class: 'field-error', id: errId, 'aria-live': 'assertive' });
    const reveal = h('button', { type: 'button', class: 'btn btn-sm btn-ghost reveal-btn', 'aria-pressed': 'false', 'aria-controls': inputId }, 'Show');
    reveal.addEventListener('click', () => {
      const show = input.type === 'password';
      input.type = show ? 'text' : 'password';
      reveal.textContent = show ? 'Hide' : 'Show';
      reveal.setAttribute('aria-pressed', String(show));
      input.focus();
    });
    const submit = h('button', { type: 'submit', class: 'btn btn-primary btn-lg btn-block' }, 'Sign in');
    const setError = (msg) => {
      if (msg) {
        replace(errorEl, icon('alert'), h('span', null, msg));
        input.setAttribute('aria-invalid', 'true');
      } else {
        clear(errorEl);
        input.removeAttribute('aria-invalid');
      }
    };
    input.addEventListener('input', () => setError(null));
    const form = h(
      'form',
      { novalidate: true, 'aria-label': 'Sign in' },
      h(
        'div',
        { class: 'field' },
        h('label', { class: 'label', for: inputId }, 'Wallet API key'),
        h('div', { class: 'reveal-wrap' }, input, reveal),
        h('p', { class: 'hint', id: hintId }, 'Starts with lava_wk_. It is used once to open a session and is never stored in this browser.'),
        errorEl,
      ),
      submit,
    );
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const key = input.value.trim();
      if (!key) {
        setError('Enter your wallet API key.');
        input.focus();
        return;
      }
      setError(null);
      busy(submit, true);
      try {
        const sess = await api('POST', '/api/session', { wallet_key: key }, { auth: false });
        input.value = '';
        setSession(sess);
        state.models = null;
        const back = state.returnTo;
        state.returnTo = null;
        const target = back && back !== '#' && !back.startsWith('#/signin') ? back : '#/keys';
        if (location.hash !== target) location.hash = target;
        else route();
        announce(`Signed in to ${sess.wallet_name || 'your wallet'}`);
        focusHeading();
      } catch (err) {
        busy(submit, false);
        if (err.status === 401) {
          setError('That wallet API key was not accepted. Check that you pasted the whole lava_wk_… key and that it has not been revoked.');
        } else if (err.status === 400) {
          setError(err.message);
        } else {
          setError(err.message || 'Sign-in failed. Try again.');
        }
        input.focus();
        input.select();
      }
    });

    const alertKind = { warn: 'alert-warn', ok: 'alert-ok', info: 'alert-info', error: 'alert-danger' }[kind] || 'alert-info';
    replace(
      main,
      h(
        'div',
        { class: 'signin-wrap' },
        h(
          'div',
          { class: 'card signin-card' },
          h('div', { class: 'signin-brand' }, h('img', { class: 'brand-mark', src: '/assets/favicon.svg', alt: '', width: 28, height: 28 }), 'spendgate'),
          h('h1', null, 'Sign in to AI Spend'),
          h('p', { class: 'lede' }, 'Create and manage spend keys for your AI tools, with limits and usage per key.'),
          message ? h('div', { class: ['alert', alertKind], role: 'status' }, icon(kind === 'ok' ? 'check' : kind === 'warn' ? 'lock' : 'info'), h('span', null, message)) : null,
          form,
          h(
            'div',
            { class: 'signin-foot' },
            'No wallet key yet? The server operator creates one with ',
            h('code', null, 'spendgate wallets create --name "Acme"'),
            '.',
          ),
        ),
        h('p', { class: 'signin-legal' }, 'Self-hosted. Nothing on this page loads from another site.'),
      ),
    );
    input.focus();
  }

  async function signOut() {
    const btn = $('#sign-out');
    busy(btn, true);
    try {
      await api('DELETE', '/api/session', undefined, { auth: false });
    } catch {
      // Signed out either way: the cookie is gone or the session already ended.
    }
    busy(btn, false);
    setSession(null);
    state.models = null;
    state.revealed = null;
    state.returnTo = null;
    showSignIn({ message: 'You have signed out.', kind: 'ok' });
  }

  // ---------------------------------------------------------------------------
  // Shared pieces
  // ---------------------------------------------------------------------------

  function loadingBlock(label = 'Loading…') {
    return h('div', { class: 'loading', role: 'status' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), label);
  }

  function errorBlock(err, retry) {
    return h(
      'div',
      { class: 'card empty empty-sm', role: 'alert' },
      h('h2', null, 'Something went wrong'),
      h('p', null, err.message || String(err)),
      retry ? h('div', null, h('button', { type: 'button', class: 'btn', onclick: retry }, icon('refresh'), 'Try again')) : null,
    );
  }

  function emptyArt() {
    return s(
      'svg',
      { class: 'empty-art', viewBox: '0 0 120 120', 'aria-hidden': 'true', fill: 'none' },
      s('circle', { cx: 60, cy: 60, r: 56, fill: 'currentColor', opacity: '0.08' }),
      s('rect', { x: 26, y: 44, width: 68, height: 40, rx: 8, fill: 'currentColor', opacity: '0.14' }),
      s('circle', { cx: 46, cy: 64, r: 9, stroke: 'currentColor', 'stroke-width': 4 }),
      s('path', { d: 'M55 64h26M73 64v8M81 64v6', stroke: 'currentColor', 'stroke-width': 4, 'stroke-linecap': 'round' }),
      s('path', { d: 'M60 22v10M88 30l-6 8M32 30l6 8', stroke: 'currentColor', 'stroke-width': 3, 'stroke-linecap': 'round', opacity: '0.5' }),
    );
  }

  function pageHead({ title, lede, actions = [], crumbs = null }) {
    return h(
      'div',
      { class: 'page-head' },
      h(
        'div',
        null,
        crumbs,
        h('h1', null, title),
        lede ? h('p', { class: 'lede' }, lede) : null,
      ),
      actions.length ? h('div', { class: 'actions' }, actions) : null,
    );
  }

  function backCrumb(href, label) {
    return h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href }, icon('back', { width: 14, height: 14 }), label));
  }

  /** Current vs limit as a labelled progress bar. */
  function meterBlock({ label, current, limit, cycle, money }) {
    const fmt = money ? fmtUsd : fmtInt;
    const cur = Number(current || 0);
    let value;
    let pct = 0;
    let bar;
    if (limit !== null && limit !== undefined) {
      const lim = Number(limit);
      pct = lim > 0 ? Math.min(1, cur / lim) : 1;
      value = h('span', { class: 'meter-value' }, fmt(cur), h('span', { class: 'of' }, ` / ${money ? fmtUsd(lim) : fmtInt(lim)} ${CYCLE_PER[cycle] || ''}`));
      const fill = h('div', { class: 'meter-fill' });
      // A sliver for any use at all, so a tiny spend still shows on the bar.
      fill.style.width = `${cur > 0 ? Math.max(pct * 100, 1.5).toFixed(2) : 0}%`;
      bar = h(
        'div',
        {
          class: ['meter', pct >= 1 ? 'is-full' : pct >= 0.8 ? 'is-warn' : null],
          role: 'progressbar',
          'aria-label': `${label}: ${fmt(cur)} of ${money ? fmtUsd(lim) : fmtInt(lim)} ${CYCLE_PER[cycle] || ''}`,
          'aria-valuemin': '0',
          'aria-valuemax': '100',
          'aria-valuenow': String(Math.round(pct * 100)),
        },
        fill,
      );
    } else {
      value = h('span', { class: 'meter-value' }, fmt(cur), h('span', { class: 'of' }, ' this month · no limit'));
      bar = h('div', { class: 'meter is-none', 'aria-hidden': 'true' });
    }
    return h('div', { class: 'meter-block', dataset: { meter: money ? 'spend' : 'requests' } }, h('div', { class: 'meter-head' }, h('span', { class: 'meter-label' }, label), value), bar);
  }

  // ---------------------------------------------------------------------------
  // Tabs and snippets
  // ---------------------------------------------------------------------------

  function tabs(items, label) {
    const base = uid('tabs');
    const tablist = h('div', { class: 'tablist', role: 'tablist', 'aria-label': label });
    const panels = h('div');
    const btns = items.map((it, i) => {
      const tabId = `${base}-tab-${i}`;
      const panelId = `${base}-panel-${i}`;
      const btn = h('button', { type: 'button', class: 'tab', role: 'tab', id: tabId, 'aria-controls': panelId, 'aria-selected': 'false', tabindex: '-1' }, it.label);
      const panel = h('div', { class: 'tabpanel', role: 'tabpanel', id: panelId, 'aria-labelledby': tabId, tabindex: '0', hidden: true }, it.render());
      panels.appendChild(panel);
      btn.addEventListener('click', () => select(i));
      btn.addEventListener('keydown', (e) => {
        let j = null;
        if (e.key === 'ArrowRight') j = (i + 1) % items.length;
        else if (e.key === 'ArrowLeft') j = (i - 1 + items.length) % items.length;
        else if (e.key === 'Home') j = 0;
        else if (e.key === 'End') j = items.length - 1;
        if (j !== null) {
          e.preventDefault();
          select(j);
          btns[j].focus();
        }
      });
      tablist.appendChild(btn);
      return btn;
    });
    function select(i) {
      btns.forEach((b, k) => {
        const on = k === i;
        b.setAttribute('aria-selected', String(on));
        b.tabIndex = on ? 0 : -1;
        panels.children[k].hidden = !on;
      });
    }
    select(0);
    return h('div', { class: 'tabs' }, tablist, panels);
  }

  function codeBlock(code, what = 'Code') {
    return h(
      'div',
      { class: 'code' },
      h('div', { class: 'code-head' }, h('span', null, what), copyButton(code, { cls: 'btn btn-sm copy-btn', what: `${what} snippet`, ariaLabel: `Copy ${what} snippet` })),
      h('pre', null, h('code', null, code)),
    );
  }

  function defaultModel(format, allowed) {
    const models = state.models || [];
    const ids = new Set(models.map((m) => m.id));
    if (allowed && allowed.length) {
      const own = allowed.find((id) => {
        const m = models.find((x) => x.id === id);
        return m && m.owned_by === format;
      });
      return own || allowed[0];
    }
    if (format === 'openai') {
      if (ids.has('gpt-4o-mini') || !models.length) return 'gpt-4o-mini';
      const first = models.find((m) => m.owned_by === 'openai');
      return first ? first.id : 'gpt-4o-mini';
    }
    const sonnet = models.find((m) => m.owned_by === 'anthropic' && m.id.includes('sonnet'));
    const anyA = models.find((m) => m.owned_by === 'anthropic');
    return (sonnet || anyA || { id: 'claude-sonnet-4-20250514' }).id;
  }

  function baseUrlFor(format) {
    return format === 'anthropic' ? location.origin : `${location.origin}/v1`;
  }

  function snippetItems(format, key, model) {
    const base = baseUrlFor(format);
    if (format === 'anthropic') {
      return [
        {
          label: 'Claude Code',
          render: () => [
            h('p', { class: 'hint' }, 'Run Claude Code with the gateway as its API. It needs an Anthropic-format key.'),
            codeBlock(`ANTHROPIC_BASE_URL=${base} ANTHROPIC_API_KEY=${key} claude`, 'Shell'),
          ],
        },
        {
          label: 'Python',
          render: () => [
            h('p', { class: 'hint' }, 'Anthropic Python SDK (pip install anthropic). The base URL has no /v1: the SDK adds it.'),
            codeBlock(
              `import anthropic

client = anthropic.Anthropic(
    base_url="${base}",
    api_key="${key}",
)
message = client.messages.create(
    model="${model}",
    max_tokens=1024,
    messages=[{"role": "user", "content": "Hello!"}],
)
print(message.content[0].text)`,
              'Python',
            ),
          ],
        },
        {
          label: 'Node.js',
          render: () => [
            h('p', { class: 'hint' }, 'Anthropic TypeScript SDK (npm install @anthropic-ai/sdk).'),
            codeBlock(
              `import Anthropic from '@anthropic-ai/sdk';

const anthropic = new Anthropic({
  baseURL: '${base}', // no /v1: the SDK adds it
  apiKey: '${key}',
});
const message = await anthropic.messages.create({
  model: '${model}',
  max_tokens: 1024,
  messages: [{ role: 'user', content: 'Hello!' }],
});
console.log(message.content[0].text);`,
              'JavaScript',
            ),
          ],
        },
        {
          label: 'curl',
          render: () => [
            codeBlock(
              `curl ${base}/v1/messages \\
  -H "x-api-key: ${key}" \\
  -H "anthropic-version: 2023-06-01" \\
  -H "content-type: application/json" \\
  -d '{"model": "${model}", "max_tokens": 1024, "messages": [{"role": "user", "content": "Hello!"}]}'`,
              'Shell',
            ),
          ],
        },
      ];
    }
    return [
      {
        label: 'Python',
        render: () => [
          h('p', { class: 'hint' }, 'OpenAI Python SDK (pip install openai).'),
          codeBlock(
            `from openai import OpenAI

client = OpenAI(
    base_url="${base}",
    api_key="${key}",
)
response = client.chat.completions.create(
    model="${model}",
    messages=[{"role": "user", "content": "Hello!"}],
)
print(response.choices[0].message.content)`,
            'Python',
          ),
        ],
      },
      {
        label: 'Node.js',
        render: () => [
          h('p', { class: 'hint' }, 'OpenAI TypeScript SDK (npm install openai).'),
          codeBlock(
            `import OpenAI from 'openai';

const openai = new OpenAI({
  baseURL: '${base}',
  apiKey: '${key}',
});
const completion = await openai.chat.completions.create({
  model: '${model}',
  messages: [{ role: 'user', content: 'Hello!' }],
});
console.log(completion.choices[0].message.content);`,
            'JavaScript',
          ),
        ],
      },
      {
        label: 'curl',
        render: () => [
          codeBlock(
            `curl ${base}/chat/completions \\
  -H "Authorization: Bearer ${key}" \\
  -H "Content-Type: application/json" \\
  -d '{"model": "${model}", "messages": [{"role": "user", "content": "Hello!"}]}'`,
            'Shell',
          ),
        ],
      },
      {
        label: 'Cursor',
        render: () => [
          h(
            'ol',
            { class: 'steps' },
            h('li', null, 'Open Cursor Settings → Models → API Keys.'),
            h('li', null, 'Paste the key into “OpenAI API Key”.'),
            h('li', null, 'Turn on “Override OpenAI Base URL” and enter the base URL below.'),
          ),
          codeBlock(`Base URL: ${base}\nAPI key:  ${key}`, 'Cursor settings'),
          h('p', { class: 'hint' }, 'Cursor calls the base URL from its own servers, so it must be reachable from the internet.'),
        ],
      },
      {
        label: 'Codex CLI',
        render: () => [
          h('p', { class: 'hint' }, 'Codex CLI reads the OpenAI base URL and key from the environment.'),
          codeBlock(`OPENAI_BASE_URL=${base} OPENAI_API_KEY=${key} codex`, 'Shell'),
        ],
      },
      {
        label: 'Other tools',
        render: () => [
          h('p', { class: 'hint' }, 'LangChain, the Vercel AI SDK, Cline and most OpenAI-compatible tools take a base URL and an API key, or read them from the environment.'),
          codeBlock(`export OPENAI_BASE_URL=${base}\nexport OPENAI_API_KEY=${key}`, 'Shell'),
        ],
      },
    ];
  }

  function connectBlock(format, key, model) {
    const base = baseUrlFor(format);
    return h(
      'div',
      { class: 'connect-block' },
      h(
        'div',
        { class: 'field' },
        h('span', { class: 'label', id: uid('base') }, `Base URL for ${FORMAT_NAME[format]}-format tools`),
        h(
          'div',
          { class: 'base-url-row' },
          h('code', { dataset: { baseUrl: format } }, base),
          copyButton(base, { what: 'Base URL', ariaLabel: 'Copy base URL' }),
          h('span', { class: 'hint' }, format === 'anthropic' ? 'No /v1 at the end: the Anthropic SDKs add it.' : 'Ends in /v1: the OpenAI SDKs add the rest.'),
        ),
      ),
      tabs(snippetItems(format, key, model), 'Setup snippets'),
    );
  }

  // ---------------------------------------------------------------------------
  // Keys page
  // ---------------------------------------------------------------------------

  async function viewKeys(ctx) {
    pageTitle('AI Spend');
    const createBtn = h('a', { class: 'btn btn-primary', href: '#/create' }, icon('plus'), 'Create spend key');
    const body = h('div', null, h('div', { class: 'skeleton', 'aria-hidden': 'true' }), h('p', { class: 'visually-hidden', role: 'status' }, 'Loading keys…'));
    replace(
      main,
      pageHead({
        title: 'AI Spend',
        lede: 'Spend keys are scoped API keys for your AI tools and agents, each with its own models, limits and usage.',
        actions: [createBtn],
      }),
      body,
    );
    focusHeading();

    let keys;
    try {
      keys = await loadAllKeys();
    } catch (err) {
      if (err.expired || !ctx.alive()) return;
      replace(body, errorBlock(err, () => viewKeys(newCtx())));
      return;
    }
    if (!ctx.alive()) return;
    renderKeysBody(ctx, body, keys);
  }

  function renderKeysBody(ctx, body, keys) {
    if (keys.length === 0) {
      replace(
        body,
        h(
          'div',
          { class: 'card empty' },
          emptyArt(),
          h('h2', null, 'No spend keys yet'),
          h('p', null, 'Create a key for each tool or agent: Claude Code, Cursor, a production agent. Give it a budget and the models it may use, then paste it where the provider key used to go.'),
          h('a', { class: 'btn btn-primary btn-lg', href: '#/create' }, icon('plus'), 'Create your first spend key'),
        ),
      );
      return;
    }

    const counts = { active: 0, paused: 0, expired: 0 };
    let spend = 0;
    let reqs = 0;
    let last = null;
    for (const k of keys) {
      counts[keyState(k)]++;
      spend += Number(k.total_spend || 0);
      reqs += Number(k.total_requests || 0);
      if (k.last_used_at && (!last || Date.parse(k.last_used_at) > Date.parse(last))) last = k.last_used_at;
    }
    const sub = [`${counts.active} active`, counts.paused ? `${counts.paused} paused` : null, counts.expired ? `${counts.expired} expired` : null].filter(Boolean).join(' · ');
    const stat = (label, value, subText) =>
      h('div', { class: 'card stat' }, h('div', { class: 'stat-label' }, label), h('div', { class: 'stat-value' }, value), h('div', { class: 'stat-sub' }, subText));
    const stats = h(
      'section',
      { class: 'stats', 'aria-label': 'Summary' },
      stat('Spend keys', fmtInt(keys.length), sub),
      stat('Total spend', fmtUsd(spend), 'all keys, all time'),
      stat('Requests', fmtInt(reqs), 'all keys, all time'),
      stat('Last request', last ? timeEl(last) : 'Never', last ? fmtDate(last) : 'no requests yet'),
    );

    const f = state.keysFilter;
    const search = h('input', {
      id: 'key-search',
      class: 'input',
      type: 'search',
      placeholder: 'Search by name, key or model',
      value: f.q,
      autocomplete: 'off',
    });
    const statusSel = h(
      'select',
      { id: 'key-status', class: 'select' },
      h('option', { value: 'all' }, 'All statuses'),
      h('option', { value: 'active' }, 'Active'),
      h('option', { value: 'paused' }, 'Paused'),
      h('option', { value: 'expired' }, 'Expired'),
    );
    statusSel.value = f.status;
    const formatSel = h(
      'select',
      { id: 'key-format', class: 'select' },
      h('option', { value: 'all' }, 'All formats'),
      h('option', { value: 'openai' }, 'OpenAI format'),
      h('option', { value: 'anthropic' }, 'Anthropic format'),
    );
    formatSel.value = f.format;
    const count = h('span', { class: 'result-count', role: 'status', 'aria-live': 'polite' });
    const grid = h('div', { class: 'key-grid' });

    const toolbar = h(
      'div',
      { class: 'toolbar', role: 'search' },
      h('div', { class: 'search' }, h('label', { class: 'visually-hidden', for: 'key-search' }, 'Search keys'), icon('search'), search),
      h('label', { class: 'visually-hidden', for: 'key-status' }, 'Filter by status'),
      statusSel,
      h('label', { class: 'visually-hidden', for: 'key-format' }, 'Filter by format'),
      formatSel,
      count,
    );

    const render = () => {
      const q = f.q.trim().toLowerCase();
      const shown = keys.filter((k) => {
        if (f.status !== 'all' && keyState(k) !== f.status) return false;
        if (f.format !== 'all' && k.request_shape !== f.format) return false;
        if (!q) return true;
        const hay = [k.name, k.key_preview, k.spend_key_id, ...(k.allowed_models || []), ...(k.allowed_providers || [])].join(' ').toLowerCase();
        return hay.includes(q);
      });
      count.textContent = shown.length === keys.length ? `${keys.length} ${keys.length === 1 ? 'key' : 'keys'}` : `${shown.length} of ${keys.length} keys`;
      if (!shown.length) {
        replace(
          grid,
          h(
            'div',
            { class: 'card empty empty-sm' },
            h('h2', null, 'No keys match'),
            h('p', null, 'Try another search or clear the filters.'),
            h(
              'p',
              null,
              h(
                'button',
                {
                  type: 'button',
                  class: 'btn',
                  onclick: () => {
                    f.q = '';
                    f.status = 'all';
                    f.format = 'all';
                    search.value = '';
                    statusSel.value = 'all';
                    formatSel.value = 'all';
                    render();
                    search.focus();
                  },
                },
                'Clear filters',
              ),
            ),
          ),
        );
        grid.classList.remove('key-grid');
        return;
      }
      grid.classList.add('key-grid');
      replace(
        grid,
        shown.map((k) => keyCard(k, (updated) => {
          const i = keys.findIndex((x) => x.spend_key_id === updated.spend_key_id);
          if (i >= 0) keys[i] = updated;
          renderKeysBody(ctx, body, keys);
        })),
      );
    };
    search.addEventListener('input', () => {
      f.q = search.value;
      render();
    });
    statusSel.addEventListener('change', () => {
      f.status = statusSel.value;
      render();
    });
    formatSel.addEventListener('change', () => {
      f.format = formatSel.value;
      render();
    });
    const hadFocus = document.activeElement && document.activeElement.id;
    replace(body, stats, toolbar, h('section', { 'aria-label': 'Spend keys' }, grid));
    render();
    if (hadFocus && ['key-search', 'key-status', 'key-format'].includes(hadFocus)) $(`#${hadFocus}`).focus();
  }

  function keyCard(k, onChange) {
    const st = keyState(k);
    const titleId = uid('key');
    const href = `#/keys/${enc(k.spend_key_id)}`;
    const toggle = h(
      'button',
      { type: 'button', class: 'btn btn-sm', 'aria-label': `${k.status === 'paused' ? 'Resume' : 'Pause'} ${k.name}` },
      icon(k.status === 'paused' ? 'play' : 'pause'),
      k.status === 'paused' ? 'Resume' : 'Pause',
    );
    toggle.addEventListener('click', async () => {
      busy(toggle, true);
      try {
        const updated = await setStatus(k, k.status === 'paused' ? 'active' : 'paused');
        onChange(updated);
        const again = document.querySelector(`[data-key-id="${CSS.escape(k.spend_key_id)}"] .foot-actions button`);
        if (again) again.focus();
      } catch (err) {
        busy(toggle, false);
        if (!err.expired) toast(err.message, 'error');
      }
    });
    const modelsText = k.allowed_models ? listChips(k.allowed_models, { all: 'All models', max: 3 }) : h('span', null, 'All models');
    return h(
      'article',
      { class: ['card', 'key-card', st !== 'active' && 'is-inactive'], 'aria-labelledby': titleId, dataset: { keyId: k.spend_key_id, keyName: k.name } },
      h(
        'div',
        { class: 'key-card-head' },
        h('div', { class: 'key-card-title' }, h('h2', { id: titleId }, h('a', { href }, k.name)), h('span', { class: 'preview mono' }, k.key_preview)),
        h('div', { class: 'key-card-badges' }, statusBadge(k), formatBadge(k)),
      ),
      h(
        'div',
        { class: 'meters' },
        meterBlock({ label: 'Spend', current: k.current_spend, limit: k.spend_limit ? k.spend_limit.amount : null, cycle: k.spend_limit && k.spend_limit.cycle, money: true }),
        meterBlock({ label: 'Requests', current: k.current_requests, limit: k.request_limit ? k.request_limit.count : null, cycle: k.request_limit && k.request_limit.cycle, money: false }),
      ),
      h(
        'dl',
        { class: 'kv' },
        h('dt', null, 'Models'),
        h('dd', { dataset: { field: 'models' } }, modelsText),
        k.allowed_providers ? [h('dt', null, 'Providers'), h('dd', null, k.allowed_providers.map(providerName).join(', '))] : null,
        h('dt', null, 'Rate limit'),
        h('dd', null, rateText(k.rate_limit)),
        h('dt', null, 'Last used'),
        h('dd', { dataset: { field: 'last-used' } }, timeEl(k.last_used_at)),
        h('dt', null, 'Created'),
        h('dd', null, timeEl(k.created_at)),
        k.expires_at ? [h('dt', null, st === 'expired' ? 'Expired' : 'Expires'), h('dd', { dataset: { field: 'expires' } }, timeEl(k.expires_at))] : null,
      ),
      h(
        'div',
        { class: 'key-card-foot' },
        h('a', { href, class: 'btn btn-sm btn-ghost', 'aria-label': `Details for ${k.name}` }, 'Details', icon('right')),
        h('div', { class: 'foot-actions' }, toggle),
      ),
    );
  }

  async function setStatus(k, status) {
    const updated = await api('PATCH', `/v1/spend_keys/${enc(k.spend_key_id)}`, { status });
    toast(
      status === 'paused'
        ? `“${updated.name}” is paused. Requests with it are refused until you resume it.`
        : `“${updated.name}” is active again.`,
      'ok',
    );
    return updated;
  }

  // ---------------------------------------------------------------------------
  // Create / edit form
  // ---------------------------------------------------------------------------

  const PROVIDER_ORDER = ['openai', 'anthropic'];
  function sortProviders(list) {
    return list.slice().sort((a, b) => {
      const ia = PROVIDER_ORDER.indexOf(a);
      const ib = PROVIDER_ORDER.indexOf(b);
      if (ia !== ib) return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib);
      return providerName(a).localeCompare(providerName(b));
    });
  }

  function toLocalInput(iso) {
    if (!iso) return '';
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return '';
    const pad = (n) => String(n).padStart(2, '0');
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
  }

  function tzLabel() {
    const off = -new Date().getTimezoneOffset();
    const sign = off >= 0 ? '+' : '-';
    const abs = Math.abs(off);
    const hh = String(Math.floor(abs / 60)).padStart(2, '0');
    const mm = String(abs % 60).padStart(2, '0');
    let zone = '';
    try {
      zone = Intl.DateTimeFormat().resolvedOptions().timeZone || '';
    } catch {
      zone = '';
    }
    const utc = off === 0 ? 'UTC' : `UTC${sign}${hh}:${mm}`;
    return zone && zone !== 'UTC' && zone !== 'Etc/UTC' ? `${zone}, ${utc}` : utc;
  }

  async function viewKeyForm(ctx, id) {
    const editing = id !== null;
    pageTitle(editing ? 'Edit spend key' : 'Create spend key');
    replace(main, loadingBlock(editing ? 'Loading key…' : 'Loading models…'));
    let models;
    let key = null;
    try {
      [models, key] = await Promise.all([loadModels(), editing ? api('GET', `/v1/spend_keys/${enc(id)}`) : Promise.resolve(null)]);
    } catch (err) {
      if (err.expired || !ctx.alive()) return;
      if (err.status === 404) {
        replace(main, notFoundKey());
        return;
      }
      replace(main, errorBlock(err, () => viewKeyForm(newCtx(), id)));
      return;
    }
    if (!ctx.alive()) return;
    renderKeyForm(ctx, models, key);
  }

  function renderKeyForm(ctx, models, key) {
    const editing = !!key;
    const fieldIds = {};
    const {
      errors,
      alert: formAlert,
      slot: errSlot,
      show: showError,
      clear: clearErrors,
    } = fieldErrors((p) => document.getElementById(fieldIds[p]));

    function input(name, attrs = {}) {
      const id = `f-${name.replace(/\./g, '-')}`;
      fieldIds[name] = id;
      return h('input', { id, name, class: 'input', autocomplete: 'off', ...attrs });
    }

    function cycleSelect(name, value) {
      const id = `f-${name.replace(/\./g, '-')}`;
      const sel = h(
        'select',
        { id, name, class: 'select' },
        ['daily', 'weekly', 'monthly', 'total'].map((c) => h('option', { value: c }, CYCLE_NAME[c])),
      );
      sel.value = value || 'monthly';
      return sel;
    }

    // ----- Basics
    const nameInput = input('name', { type: 'text', maxlength: 200, required: true, placeholder: 'e.g. Claude Code, Production agent', value: key ? key.name : '' });
    const nameErr = errSlot('name', nameInput);
    const shape = key ? key.request_shape : 'openai';
    const formatChoice = (value, title, desc, tools, base) =>
      h(
        'label',
        { class: 'choice' },
        h('input', { type: 'radio', name: 'request_shape', value, checked: shape === value }),
        h(
          'span',
          null,
          h('span', { class: 'choice-title' }, title),
          h('span', { class: 'choice-desc' }, desc),
          h('span', { class: 'choice-meta' }, tools, h('br'), 'Base URL ', h('code', null, base)),
        ),
      );
    const formatGroup = h(
      'fieldset',
      { class: 'field', id: 'f-request_shape' },
      h('legend', { class: 'label' }, 'API format'),
      h(
        'div',
        { class: 'choice-grid' },
        formatChoice('openai', 'OpenAI', '/v1/chat/completions, /v1/responses, /v1/embeddings', 'For the OpenAI SDKs, Cursor, Codex CLI, LangChain, Vercel AI SDK, Cline.', baseUrlFor('openai')),
        formatChoice('anthropic', 'Anthropic', '/v1/messages', 'For Claude Code and the Anthropic SDKs.', baseUrlFor('anthropic')),
      ),
      h('p', { class: 'hint' }, 'The format is your tool’s. Either format can use any provider’s models: spendgate translates between them.'),
    );
    const shapeErr = errSlot('request_shape', formatGroup);
    formatGroup.appendChild(shapeErr);
    fieldIds.request_shape = 'f-request_shape';

    // ----- Model access
    const byProvider = new Map();
    for (const m of models) {
      const p = m.owned_by || 'other';
      if (!byProvider.has(p)) byProvider.set(p, []);
      byProvider.get(p).push(m.id);
    }
    const known = new Set(models.map((m) => m.id));
    const extra = ((key && key.allowed_models) || []).filter((m) => !known.has(m));
    if (extra.length) byProvider.set('other', [...(byProvider.get('other') || []), ...extra]);
    const providers = sortProviders([...byProvider.keys()]);
    const allProviders = sortProviders([...new Set([...providers.filter((p) => p !== 'other'), ...((key && key.allowed_providers) || [])])]);
    const selectedModels = new Set((key && key.allowed_models) || []);

    const modelMode = key && key.allowed_models ? 'some' : 'all';
    const modelModeAll = h('input', { type: 'radio', name: 'model_mode', value: 'all', checked: modelMode === 'all' });
    const modelModeSome = h('input', { type: 'radio', name: 'model_mode', value: 'some', checked: modelMode === 'some' });
    const modelSearch = h('input', { id: 'f-model-search', class: 'input', type: 'search', placeholder: 'Filter models', autocomplete: 'off' });
    const modelCount = h('span', { class: 'picker-count', 'aria-live': 'polite' });
    const groupEls = [];
    const pickerList = h('div', { class: 'picker-list', id: 'f-allowed_models' });
    for (const p of providers) {
      const ids = byProvider.get(p);
      const items = ids.map((mid) => {
        const cb = h('input', { type: 'checkbox', name: 'allowed_models', value: mid, checked: selectedModels.has(mid) });
        const label = h('label', { class: 'check picker-item', dataset: { model: mid } }, cb, h('span', { class: 'mono' }, mid));
        return { mid, cb, label };
      });
      const all = h('input', { type: 'checkbox', 'aria-label': `All ${providerName(p)} models` });
      const group = h(
        'fieldset',
        { class: 'picker-group', dataset: { provider: p } },
        h('legend', null, h('span', { class: 'picker-group-head' }, h('label', { class: 'check' }, all, h('span', null, `${providerName(p)} · ${ids.length}`)))),
        h('div', { class: 'picker-items' }, items.map((i) => i.label)),
      );
      all.addEventListener('change', () => {
        for (const it of items) if (!it.label.hidden) it.cb.checked = all.checked;
        syncModels();
      });
      for (const it of items) it.cb.addEventListener('change', syncModels);
      groupEls.push({ p, group, items, all });
      pickerList.appendChild(group);
    }
    const pickerEmpty = h('p', { class: 'picker-empty', hidden: true }, 'No model matches that filter.');
    pickerList.appendChild(pickerEmpty);
    function syncModels() {
      let n = 0;
      for (const g of groupEls) {
        const visible = g.items.filter((i) => !i.label.hidden);
        const checked = visible.filter((i) => i.cb.checked).length;
        g.all.checked = visible.length > 0 && checked === visible.length;
        g.all.indeterminate = checked > 0 && checked < visible.length;
        n += g.items.filter((i) => i.cb.checked).length;
      }
      modelCount.textContent = `${n} selected`;
    }
    modelSearch.addEventListener('input', () => {
      const q = modelSearch.value.trim().toLowerCase();
      let any = false;
      for (const g of groupEls) {
        let groupAny = false;
        for (const it of g.items) {
          const show = !q || it.mid.toLowerCase().includes(q) || providerName(g.p).toLowerCase().includes(q);
          it.label.hidden = !show;
          groupAny = groupAny || show;
        }
        g.group.hidden = !groupAny;
        any = any || groupAny;
      }
      pickerEmpty.hidden = any;
      syncModels();
    });
    syncModels();
    const picker = h(
      'div',
      { class: 'picker', hidden: modelMode === 'all' },
      h('div', { class: 'picker-tools' }, h('label', { class: 'visually-hidden', for: 'f-model-search' }, 'Filter models'), modelSearch, modelCount),
      pickerList,
    );
    const syncMode = () => {
      picker.hidden = !modelModeSome.checked;
    };
    modelModeAll.addEventListener('change', syncMode);
    modelModeSome.addEventListener('change', () => {
      syncMode();
      modelSearch.focus();
    });
    const modelsField = h(
      'fieldset',
      { class: 'field' },
      h('legend', { class: 'label' }, 'Models'),
      h(
        'div',
        { class: 'radio-row' },
        h('label', { class: 'check' }, modelModeAll, h('span', null, 'All models')),
        h('label', { class: 'check' }, modelModeSome, h('span', null, 'Only the models I choose')),
      ),
      picker,
    );
    const modelsErr = errSlot('allowed_models', modelsField);
    modelsField.appendChild(modelsErr);
    fieldIds.allowed_models = 'f-model-search';

    const provMode = key && key.allowed_providers ? 'some' : 'all';
    const provAll = h('input', { type: 'radio', name: 'provider_mode', value: 'all', checked: provMode === 'all' });
    const provSome = h('input', { type: 'radio', name: 'provider_mode', value: 'some', checked: provMode === 'some' });
    const selectedProviders = new Set((key && key.allowed_providers) || []);
    const provChecks = h(
      'div',
      { class: 'provider-checks', id: 'f-allowed_providers', hidden: provMode === 'all' },
      allProviders.map((p) => h('label', { class: 'pill-check' }, h('input', { type: 'checkbox', name: 'allowed_providers', value: p, checked: selectedProviders.has(p) }), providerName(p))),
    );
    provAll.addEventListener('change', () => {
      provChecks.hidden = true;
    });
    provSome.addEventListener('change', () => {
      provChecks.hidden = false;
    });
    const providersField = h(
      'fieldset',
      { class: 'field' },
      h('legend', { class: 'label' }, 'Providers'),
      h(
        'div',
        { class: 'radio-row' },
        h('label', { class: 'check' }, provAll, h('span', null, 'All providers')),
        h('label', { class: 'check' }, provSome, h('span', null, 'Only the providers I choose')),
      ),
      provChecks,
      h('p', { class: 'hint' }, 'A request must pass both the model and the provider restriction.'),
    );
    const provErr = errSlot('allowed_providers', providersField);
    providersField.appendChild(provErr);
    fieldIds.allowed_providers = 'f-allowed_providers';

    // ----- Limits
    const amount = input('spend_limit.amount', {
      type: 'text',
      inputmode: 'decimal',
      placeholder: 'No limit',
      value: key && key.spend_limit ? key.spend_limit.amount : '',
    });
    const amountCycle = cycleSelect('spend_limit.cycle', key && key.spend_limit ? key.spend_limit.cycle : 'monthly');
    const spendField = h(
      'div',
      { class: 'field' },
      h('label', { class: 'label', for: amount.id }, 'Spend limit', h('span', { class: 'opt' }, 'optional')),
      h(
        'div',
        { class: 'limit-row' },
        h('div', { class: 'input-group start-only' }, h('span', { class: 'addon', 'aria-hidden': 'true' }, '$'), amount),
        h('div', null, h('label', { class: 'visually-hidden', for: amountCycle.id }, 'Spend limit cycle'), amountCycle),
      ),
      h('p', { class: 'hint', id: uid('hint') }, 'A hard cap in US dollars. Requests that could go over it are refused. Daily, weekly and monthly cycles reset at UTC midnight.'),
    );
    amount.setAttribute('aria-describedby', spendField.lastChild.id);
    spendField.append(errSlot('spend_limit.amount', amount), errSlot('spend_limit.cycle', amountCycle));
    errors.set('spend_limit', errors.get('spend_limit.amount'));

    const count = input('request_limit.count', {
      type: 'text',
      inputmode: 'numeric',
      placeholder: 'No limit',
      value: key && key.request_limit ? String(key.request_limit.count) : '',
    });
    const countCycle = cycleSelect('request_limit.cycle', key && key.request_limit ? key.request_limit.cycle : 'daily');
    const countField = h(
      'div',
      { class: 'field' },
      h('label', { class: 'label', for: count.id }, 'Request limit', h('span', { class: 'opt' }, 'optional')),
      h(
        'div',
        { class: 'limit-row' },
        h('div', { class: 'input-group' }, count),
        h('div', null, h('label', { class: 'visually-hidden', for: countCycle.id }, 'Request limit cycle'), countCycle),
      ),
      h('p', { class: 'hint' }, 'How many requests the key may make per cycle.'),
    );
    countField.append(errSlot('request_limit.count', count), errSlot('request_limit.cycle', countCycle));
    errors.set('request_limit', errors.get('request_limit.count'));

    const rpm = input('rate_limit.rpm', { type: 'text', inputmode: 'numeric', placeholder: 'No limit', value: key && key.rate_limit ? String(key.rate_limit.rpm) : '' });
    const burst = input('rate_limit.burst', {
      type: 'text',
      inputmode: 'numeric',
      placeholder: 'Same as per minute',
      value: key && key.rate_limit && key.rate_limit.burst !== null && key.rate_limit.burst !== undefined ? String(key.rate_limit.burst) : '',
    });
    const rateField = h(
      'div',
      { class: 'field' },
      h(
        'div',
        { class: 'row' },
        h('div', { class: 'field' }, h('label', { class: 'label', for: rpm.id }, 'Requests per minute', h('span', { class: 'opt' }, 'optional')), rpm, errSlot('rate_limit.rpm', rpm)),
        h('div', { class: 'field' }, h('label', { class: 'label', for: burst.id }, 'Burst', h('span', { class: 'opt' }, 'optional')), burst, errSlot('rate_limit.burst', burst)),
      ),
      h('p', { class: 'hint' }, 'Rate limit: up to “burst” requests at once, refilled at the per-minute rate. Over it, requests get a 429 with retry-after.'),
    );
    errors.set('rate_limit', errors.get('rate_limit.rpm'));

    // ----- Expiry and status
    const expires = input('expires_at', { type: 'datetime-local', value: toLocalInput(key && key.expires_at) });
    const clearExpiry = h('button', { type: 'button', class: 'btn btn-sm btn-ghost' }, 'Clear');
    clearExpiry.addEventListener('click', () => {
      expires.value = '';
      expires.focus();
    });
    const expiresField = h(
      'div',
      { class: 'field' },
      h('label', { class: 'label', for: expires.id }, 'Expires', h('span', { class: 'opt' }, 'optional')),
      h('div', { class: 'base-url-row' }, expires, clearExpiry),
      h('p', { class: 'hint' }, `In your local time (${tzLabel()}). Leave empty for a key that never expires.`),
    );
    expires.style.maxWidth = '260px';
    expiresField.appendChild(errSlot('expires_at', expires));
    const paused = h('input', { type: 'checkbox', id: 'f-status', name: 'status', checked: key ? key.status === 'paused' : false });
    fieldIds.status = 'f-status';
    const statusField = h(
      'div',
      { class: 'field' },
      h(
        'label',
        { class: 'check', for: 'f-status' },
        paused,
        h(
          'span',
          { class: 'check-text' },
          h('span', { class: 'check-title' }, editing ? 'Paused' : 'Create it paused'),
          h('span', { class: 'hint' }, 'A paused key is refused (401) until you resume it.'),
        ),
      ),
    );
    statusField.appendChild(errSlot('status', paused));

    const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, editing ? 'Save changes' : 'Create spend key');
    const cancelHref = editing ? `#/keys/${enc(key.spend_key_id)}` : '#/keys';
    const section = (title, desc, ...fields) =>
      h('section', { class: 'form-section' }, h('div', { class: 'form-section-head' }, h('h2', null, title), h('p', null, desc)), h('div', { class: 'form-section-body' }, fields));

    const form = h(
      'form',
      { class: 'form-layout', novalidate: true, 'aria-label': editing ? 'Edit spend key' : 'Create spend key' },
      formAlert,
      section('Basics', 'A name for your own reference, and the API format your tool speaks.', h('div', { class: 'field' }, h('label', { class: 'label', for: nameInput.id }, 'Name'), nameInput, nameErr), h('div', { class: 'field' }, formatGroup)),
      section('Model access', 'Allow every model in the catalog, or only some. Requests for anything else get a 403.', modelsField, h('div', { class: 'field' }, providersField)),
      section('Limits', 'All optional. Leave a field empty for no limit.', spendField, countField, rateField),
      section(editing ? 'Expiry and status' : 'Expiry and start', 'An expired key stays listed and can be extended.', expiresField, statusField),
      h(
        'div',
        { class: 'form-actions' },
        h('span', { class: 'form-actions-note' }, editing ? 'Only the fields you change are sent. The secret stays the same.' : 'The full key is shown once, on the next page.'),
        h('a', { class: 'btn', href: cancelHref }, 'Cancel'),
        submit,
      ),
    );

    function readForm() {
      const errs = [];
      const body = {};
      body.name = nameInput.value.trim();
      if (!body.name) errs.push(['name', 'Give the key a name.']);
      body.request_shape = form.querySelector('input[name="request_shape"]:checked').value;
      if (modelModeSome.checked) {
        body.allowed_models = [...form.querySelectorAll('input[name="allowed_models"]:checked')].map((c) => c.value);
        if (!body.allowed_models.length) errs.push(['allowed_models', 'Choose at least one model, or allow all models.']);
      } else body.allowed_models = null;
      if (provSome.checked) {
        body.allowed_providers = [...form.querySelectorAll('input[name="allowed_providers"]:checked')].map((c) => c.value);
        if (!body.allowed_providers.length) errs.push(['allowed_providers', 'Choose at least one provider, or allow all providers.']);
      } else body.allowed_providers = null;
      const amt = amount.value.trim().replace(/^\$/, '').replace(/,/g, '');
      body.spend_limit = amt ? { amount: amt, cycle: amountCycle.value } : null;
      const cnt = count.value.trim().replace(/[,_\s]/g, '');
      if (cnt && !/^-?\d+$/.test(cnt)) errs.push(['request_limit.count', 'Enter a whole number of requests.']);
      body.request_limit = cnt ? { count: Number(cnt), cycle: countCycle.value } : null;
      const r = rpm.value.trim().replace(/[,_\s]/g, '');
      const b = burst.value.trim().replace(/[,_\s]/g, '');
      if (r && !/^-?\d+$/.test(r)) errs.push(['rate_limit.rpm', 'Enter a whole number of requests per minute.']);
      if (b && !/^-?\d+$/.test(b)) errs.push(['rate_limit.burst', 'Enter a whole number.']);
      if (b && !r) errs.push(['rate_limit.rpm', 'Set requests per minute to use a burst.']);
      body.rate_limit = r ? { rpm: Number(r), burst: b ? Number(b) : null } : null;
      if (expires.value) {
        const d = new Date(expires.value);
        if (Number.isNaN(d.getTime())) errs.push(['expires_at', 'Enter a valid date and time.']);
        else body.expires_at = d.toISOString();
      } else body.expires_at = null;
      body.status = paused.checked ? 'paused' : 'active';
      return { body, errs };
    }

    function diff(body) {
      const out = {};
      const same = (a, b) => JSON.stringify(a === undefined ? null : a) === JSON.stringify(b === undefined ? null : b);
      const norm = {
        ...key,
        spend_limit: key.spend_limit ? { amount: key.spend_limit.amount, cycle: key.spend_limit.cycle } : null,
        request_limit: key.request_limit ? { count: key.request_limit.count, cycle: key.request_limit.cycle } : null,
        rate_limit: key.rate_limit ? { rpm: key.rate_limit.rpm, burst: key.rate_limit.burst ?? null } : null,
      };
      for (const k of Object.keys(body)) {
        if (k === 'spend_limit' && body.spend_limit && norm.spend_limit && Number(body.spend_limit.amount) === Number(norm.spend_limit.amount) && body.spend_limit.cycle === norm.spend_limit.cycle) continue;
        if (k === 'expires_at' && body.expires_at && norm.expires_at && toLocalInput(body.expires_at) === toLocalInput(norm.expires_at)) continue;
        if (k === 'allowed_models' || k === 'allowed_providers') {
          const a = body[k] ? body[k].slice().sort() : null;
          const b = norm[k] ? norm[k].slice().sort() : null;
          if (same(a, b)) continue;
        } else if (same(body[k], norm[k])) continue;
        out[k] = body[k];
      }
      return out;
    }

    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      clearErrors();
      const { body, errs } = readForm();
      if (errs.length) {
        reportErrors(errs, showError);
        return;
      }
      let payload = body;
      if (editing) {
        payload = diff(body);
        if (!Object.keys(payload).length) {
          toast('Nothing changed.', 'info');
          go(cancelHref);
          return;
        }
      } else {
        payload = Object.fromEntries(Object.entries(body).filter(([, v]) => v !== null));
      }
      busy(submit, true);
      try {
        if (editing) {
          const updated = await api('PATCH', `/v1/spend_keys/${enc(key.spend_key_id)}`, payload);
          toast(`Saved changes to “${updated.name}”.`);
          go(`#/keys/${enc(updated.spend_key_id)}`);
        } else {
          const created = await api('POST', '/v1/spend_keys', payload);
          state.revealed = { key: created, secret: created.key, reason: 'created' };
          go(`#/keys/${enc(created.spend_key_id)}/key`);
        }
      } catch (err) {
        busy(submit, false);
        if (err.expired || !ctx.alive()) return;
        const target = showError(err.param, err.message);
        if (target && target.focus) target.focus();
        announce(err.message);
      }
    });

    const title = editing ? `Edit “${key.name}”` : 'Create a spend key';
    replace(
      main,
      pageHead({
        title,
        lede: editing ? 'Change limits, models or expiry. Usage so far is kept.' : 'A scoped key for one tool or agent, with the models and budget you choose.',
        crumbs: backCrumb(cancelHref, editing ? key.name : 'AI Spend'),
      }),
      form,
    );
    focusHeading();
  }

  // ---------------------------------------------------------------------------
  // Secret shown once (after create and rotate)
  // ---------------------------------------------------------------------------

  async function viewSecret(ctx, id) {
    const rev = state.revealed;
    if (!rev || rev.key.spend_key_id !== id) {
      location.replace(`#/keys/${enc(id)}`);
      return;
    }
    const k = rev.key;
    pageTitle(rev.reason === 'rotated' ? 'Key rotated' : 'Key created');
    try {
      await loadModels();
    } catch {
      // Snippets fall back to default model names.
    }
    if (!ctx.alive()) return;
    const secret = rev.secret;
    const model = defaultModel(k.request_shape, k.allowed_models);
    const doneHref = `#/keys/${enc(k.spend_key_id)}`;
    replace(
      main,
      h(
        'div',
        { class: 'secret-panel' },
        pageHead({
          title: rev.reason === 'rotated' ? `New secret for “${k.name}”` : `“${k.name}” is ready`,
          lede:
            rev.reason === 'rotated'
              ? 'The previous secret stopped working. Limits and usage history are unchanged.'
              : `${FORMAT_NAME[k.request_shape]} format. Paste the key into your tool where the provider key used to go.`,
          crumbs: backCrumb('#/keys', 'AI Spend'),
        }),
        h(
          'section',
          { class: 'card secret-hero', 'aria-labelledby': 'secret-title' },
          h(
            'div',
            { class: 'secret-title' },
            h('span', { class: 'secret-icon', 'aria-hidden': 'true' }, icon('key')),
            h('div', null, h('h2', { id: 'secret-title' }, 'Copy your spend key'), h('p', { class: 'muted small' }, `Key ID ${k.spend_key_id}`)),
          ),
          h(
            'div',
            { class: 'secret-box' },
            h('code', { class: 'secret-value', id: 'secret-value', tabindex: '0', 'aria-label': 'Your new spend key', dataset: { secret: '1' } }, secret),
            copyButton(secret, { label: 'Copy key', cls: 'btn btn-primary', what: 'Spend key', ariaLabel: 'Copy spend key' }),
          ),
          h(
            'div',
            { class: 'alert alert-warn secret-warning', role: 'note' },
            icon('alert'),
            h(
              'div',
              null,
              h('strong', null, 'You won’t see this key again.'),
              h('span', { class: 'alert-body' }, 'Store it now, in a password manager or your tool’s settings. If you lose it, rotate the key to get a new one.'),
            ),
          ),
        ),
        h(
          'section',
          { class: 'section card card-pad', 'aria-labelledby': 'connect-title' },
          h('h2', { id: 'connect-title' }, 'Connect a tool'),
          h('p', { class: 'muted small' }, 'Ready to paste, with your key filled in.'),
          connectBlock(k.request_shape, secret, model),
        ),
        h('div', { class: 'form-actions' }, h('a', { class: 'btn', href: '#/keys' }, 'All keys'), h('a', { class: 'btn btn-primary', href: doneHref }, 'I’ve saved my key')),
      ),
    );
    focusHeading();
    announce('Your new spend key is shown once on this page. Copy it now.');
  }

  // ---------------------------------------------------------------------------
  // Key detail
  // ---------------------------------------------------------------------------

  function notFoundKey() {
    return h(
      'div',
      { class: 'card empty' },
      emptyArt(),
      h('h1', null, 'Key not found'),
      h('p', null, 'This spend key does not exist in your wallet, or it was revoked.'),
      h('a', { class: 'btn btn-primary', href: '#/keys' }, 'Back to AI Spend'),
    );
  }

  async function viewKey(ctx, id) {
    pageTitle('Spend key');
    replace(main, loadingBlock('Loading key…'));
    let k;
    try {
      [k] = await Promise.all([api('GET', `/v1/spend_keys/${enc(id)}`), loadModels().catch(() => null)]);
    } catch (err) {
      if (err.expired || !ctx.alive()) return;
      if (err.status === 404) {
        replace(main, notFoundKey());
        focusHeading();
        return;
      }
      replace(main, errorBlock(err, () => viewKey(newCtx(), id)));
      return;
    }
    if (!ctx.alive()) return;
    pageTitle(k.name);

    const head = h('div');
    const grid = h('div');
    let key = k;

    const renderTop = () => {
      const st = keyState(key);
      const editBtn = h('a', { class: 'btn', href: `#/keys/${enc(key.spend_key_id)}/edit` }, icon('edit'), 'Edit');
      const pauseBtn = h('button', { type: 'button', class: 'btn', id: 'toggle-status' }, icon(key.status === 'paused' ? 'play' : 'pause'), key.status === 'paused' ? 'Resume' : 'Pause');
      pauseBtn.addEventListener('click', async () => {
        busy(pauseBtn, true);
        try {
          key = await setStatus(key, key.status === 'paused' ? 'active' : 'paused');
          renderTop();
          $('#toggle-status').focus();
        } catch (err) {
          busy(pauseBtn, false);
          if (!err.expired) toast(err.message, 'error');
        }
      });
      const rotateBtn = h('button', { type: 'button', class: 'btn' }, icon('rotate'), 'Rotate');
      rotateBtn.addEventListener('click', () =>
        openDialog({
          title: `Rotate “${key.name}”?`,
          iconName: 'rotate',
          body: [
            'A new secret is created and the current one stops working immediately. Tools that use it get 401 errors until you paste the new key.',
            'Limits, usage history and the key ID stay the same.',
          ],
          confirmLabel: 'Rotate key',
          onConfirm: async () => {
            const rotated = await api('POST', `/v1/spend_keys/${enc(key.spend_key_id)}/rotate`);
            state.revealed = { key: rotated, secret: rotated.key, reason: 'rotated' };
            setTimeout(() => go(`#/keys/${enc(rotated.spend_key_id)}/key`), 0);
          },
        }),
      );
      const revokeBtn = h('button', { type: 'button', class: 'btn btn-danger-ghost' }, icon('trash'), 'Revoke');
      revokeBtn.addEventListener('click', () =>
        openDialog({
          title: `Revoke “${key.name}”?`,
          iconName: 'trash',
          danger: true,
          body: ['Requests with this key fail immediately, and it cannot be undone. Its usage stays in your reports.'],
          confirmLabel: 'Revoke key',
          confirmClass: 'btn btn-danger',
          typeToConfirm: key.name,
          onConfirm: async () => {
            await api('DELETE', `/v1/spend_keys/${enc(key.spend_key_id)}`);
            toast(`“${key.name}” was revoked.`);
            setTimeout(() => go('#/keys'), 0);
          },
        }),
      );

      replace(
        head,
        backCrumb('#/keys', 'AI Spend'),
        h(
          'div',
          { class: 'detail-head' },
          h(
            'div',
            null,
            h('div', { class: 'detail-title' }, h('h1', null, key.name), statusBadge(key), formatBadge(key)),
            h(
              'div',
              { class: 'detail-meta' },
              h('span', { class: 'mono', title: 'Key preview: the full secret is never shown again' }, key.key_preview),
              h('span', null, 'Created ', timeEl(key.created_at)),
              h('span', null, 'Last used ', timeEl(key.last_used_at)),
            ),
          ),
          h('div', { class: 'detail-actions', role: 'group', 'aria-label': 'Key actions' }, editBtn, pauseBtn, rotateBtn, revokeBtn),
        ),
        st === 'paused'
          ? h('div', { class: 'alert alert-warn', role: 'status' }, icon('pause'), h('span', { class: 'alert-body' }, 'This key is paused. Requests with it are refused (401) until you resume it.'))
          : st === 'expired'
            ? h('div', { class: 'alert alert-danger', role: 'status' }, icon('alert'), h('span', { class: 'alert-body' }, `This key expired ${fmtAbs(key.expires_at)}. Edit it to set a later expiry.`))
            : null,
      );

      const sl = key.spend_limit;
      const rl = key.request_limit;
      const bigMeter = (label, cur, lim, cycle, money, total) => {
        const fmt = money ? fmtUsd : fmtInt;
        const block = meterBlock({ label, current: cur, limit: lim, cycle, money });
        const bar = block.querySelector('.meter');
        return h(
          'section',
          { class: 'card', dataset: { meter: money ? 'spend' : 'requests' } },
          h('h2', null, label),
          h(
            'div',
            { class: 'big-figure' },
            fmt(cur),
            h('span', { class: 'of' }, lim !== null && lim !== undefined ? `/ ${money ? fmtUsd(lim) : fmtInt(lim)} ${CYCLE_PER[cycle]}` : 'this month'),
          ),
          bar,
          h('p', { class: 'foot' }, lim !== null && lim !== undefined ? '' : 'No limit · ', `Lifetime: ${money ? fmtUsd(total) : `${fmtInt(total)} ${Number(total) === 1 ? 'request' : 'requests'}`}`),
        );
      };
      replace(
        grid,
        h(
          'div',
          { class: 'detail-grid' },
          bigMeter('Spend', key.current_spend, sl ? sl.amount : null, sl && sl.cycle, true, key.total_spend),
          bigMeter('Requests', key.current_requests, rl ? rl.count : null, rl && rl.cycle, false, key.total_requests),
          h(
            'section',
            { class: 'card' },
            h('h2', null, 'Access'),
            h(
              'dl',
              { class: 'kv' },
              h('dt', null, 'Models'),
              h('dd', null, listChips(key.allowed_models, { all: 'All models', max: 6 })),
              h('dt', null, 'Providers'),
              h('dd', null, key.allowed_providers ? key.allowed_providers.map(providerName).join(', ') || 'None' : 'All providers'),
              h('dt', null, 'Rate limit'),
              h('dd', null, rateText(key.rate_limit)),
              h('dt', null, 'Expires'),
              h('dd', null, key.expires_at ? timeEl(key.expires_at) : 'Never'),
            ),
          ),
        ),
      );
    };
    renderTop();

    const usage = usageSection({ keyId: k.spend_key_id, rangeState: { kind: '30' } });
    const log = requestLogSection({ keyId: k.spend_key_id, keysById: new Map([[k.spend_key_id, k]]), showKey: false, range: () => usage.range() });
    const connect = h(
      'details',
      { class: 'card connect section' },
      h('summary', null, h('span', null, 'Connect a tool', h('span', { class: 'sub' }, `Base URL and snippets for ${FORMAT_NAME[k.request_shape]}-format tools`))),
      h('div', { class: 'connect-body' }, connectBlock(k.request_shape, 'YOUR_SPEND_KEY', defaultModel(k.request_shape, k.allowed_models))),
    );

    const refreshBtn = h('button', { type: 'button', class: 'btn btn-sm', id: 'refresh' }, icon('refresh'), 'Refresh');
    refreshBtn.addEventListener('click', async () => {
      busy(refreshBtn, true);
      try {
        key = await api('GET', `/v1/spend_keys/${enc(k.spend_key_id)}`);
        renderTop();
        await Promise.all([usage.reload(), log.reload()]);
        announce('Refreshed');
      } catch (err) {
        if (err.status === 404) replace(main, notFoundKey());
        else if (!err.expired) toast(err.message, 'error');
      } finally {
        busy(refreshBtn, false);
      }
    });

    replace(
      main,
      head,
      grid,
      h(
        'section',
        { class: 'section', 'aria-labelledby': 'usage-title' },
        h('div', { class: 'section-head' }, h('div', null, h('h2', { id: 'usage-title' }, 'Usage'), h('p', { class: 'sub' }, 'Per UTC day.')), h('div', { class: 'tools' }, usage.controls, refreshBtn)),
        usage.el,
      ),
      log.el,
      connect,
    );
    focusHeading();
    usage.reload();
    log.reload();
  }

  // ---------------------------------------------------------------------------
  // Usage: date ranges, charts, by model
  // ---------------------------------------------------------------------------

  const DAY = 86400000;
  const isoDay = (d) => d.toISOString().slice(0, 10);
  const todayUtc = () => isoDay(new Date());
  const addDays = (day, n) => isoDay(new Date(Date.parse(`${day}T00:00:00Z`) + n * DAY));

  /** {kind: '7'|'30'|'90'|'custom', from, to} -> {start, end, from, to, label} */
  function computeRange(r) {
    const today = todayUtc();
    let from;
    let to;
    if (r.kind === 'custom' && r.from && r.to) {
      from = r.from <= r.to ? r.from : r.to;
      to = r.from <= r.to ? r.to : r.from;
      if (to > today) to = today;
      if (from > to) from = to;
    } else {
      const n = Number(r.kind) || 30;
      to = today;
      from = addDays(today, -(n - 1));
    }
    const start = `${from}T00:00:00.000Z`;
    const end = to === today ? new Date().toISOString() : `${to}T23:59:59.999Z`;
    const label = r.kind === 'custom' ? `${fmtDay(from, true)} – ${fmtDay(to, true)}` : `Last ${r.kind} days`;
    return { start, end, from, to, label };
  }

  function rangeControls(rangeState, onChange, { allowCustom = true, idPrefix = 'range' } = {}) {
    const name = uid(idPrefix);
    const kinds = [
      ['7', '7 days'],
      ['30', '30 days'],
      ['90', '90 days'],
    ];
    if (allowCustom) kinds.push(['custom', 'Custom']);
    const fromInput = h('input', { type: 'date', class: 'input', id: `${name}-from`, max: todayUtc(), value: rangeState.from || addDays(todayUtc(), -13) });
    const toInput = h('input', { type: 'date', class: 'input', id: `${name}-to`, max: todayUtc(), value: rangeState.to || todayUtc() });
    const apply = h('button', { type: 'button', class: 'btn' }, 'Apply');
    const custom = h(
      'div',
      { class: 'custom-range', hidden: rangeState.kind !== 'custom' },
      h('div', { class: 'field' }, h('label', { class: 'label', for: fromInput.id }, 'From (UTC)'), fromInput),
      h('div', { class: 'field' }, h('label', { class: 'label', for: toInput.id }, 'To (UTC)'), toInput),
      apply,
    );
    apply.addEventListener('click', () => {
      if (!fromInput.value || !toInput.value) {
        toast('Choose both dates.', 'error');
        return;
      }
      rangeState.from = fromInput.value;
      rangeState.to = toInput.value;
      onChange();
    });
    const seg = h(
      'fieldset',
      { class: 'segmented' },
      h('legend', null, 'Date range'),
      kinds.map(([v, label]) => {
        const radio = h('input', { type: 'radio', name, value: v, checked: rangeState.kind === v });
        radio.addEventListener('change', () => {
          rangeState.kind = v;
          custom.hidden = v !== 'custom';
          if (v === 'custom') {
            fromInput.focus();
            return;
          }
          onChange();
        });
        return h('label', null, radio, label);
      }),
    );
    return { seg, custom };
  }

  function niceScale(max, n = 4) {
    if (!(max > 0)) return { top: 1, step: 0.25, ticks: [0, 0.25, 0.5, 0.75, 1] };
    const raw = max / n;
    const mag = 10 ** Math.floor(Math.log10(raw));
    const norm = raw / mag;
    const nice = norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 2.5 ? 2.5 : norm <= 5 ? 5 : 10;
    const step = nice * mag;
    const top = Math.ceil(max / step - 1e-9) * step;
    const ticks = [];
    for (let v = 0; v <= top + step / 2; v += step) ticks.push(Number(v.toPrecision(12)));
    return { top, step, ticks };
  }

  /**
   * A bar chart of one value per day, drawn in SVG: y axis with ticks, x axis with
   * dates, hover and keyboard tooltips, and a data table for screen readers.
   */
  function barChart({ title, sub, items, value, fmt, axis, integer = false }) {
    const box = h('div', { class: 'chart', tabindex: '0', role: 'group' });
    const tip = h('div', { class: 'chart-tip', hidden: true, 'aria-live': 'polite' });
    const vals = items.map(value);
    const total = vals.reduce((a, b) => a + b, 0);
    const withData = vals.filter((v) => v > 0).length;
    const first = items.length ? fmtDay(items[0].date) : '';
    const last = items.length ? fmtDay(items[items.length - 1].date) : '';
    box.setAttribute('aria-label', `${title}, ${first} to ${last}: total ${fmt(total)}. Use the arrow keys to read each day.`);
    let hot = -1;
    let geo = null;

    function draw() {
      const W = Math.max(240, Math.floor(box.clientWidth || 600));
      const H = 210;
      const max = Math.max(0, ...vals);
      let scale = niceScale(max, 4);
      if (integer && max > 0 && scale.step < 1) scale = niceScale(Math.max(max, 4), 4);
      const labels = scale.ticks.map((t) => axis(t, scale.step));
      const ml = Math.ceil(Math.max(...labels.map((l) => l.length)) * 6.4) + 12;
      const mr = 8;
      const mt = 10;
      const mb = 26;
      const pw = W - ml - mr;
      const ph = H - mt - mb;
      const n = Math.max(1, items.length);
      const band = pw / n;
      const bw = Math.max(1, Math.min(28, band * 0.68));
      const y = (v) => mt + ph - (scale.top > 0 ? (v / scale.top) * ph : 0);
      geo = { ml, band, y, mt, ph };

      const grid = s(
        'g',
        { class: 'grid' },
        scale.ticks.map((t) => s('line', { x1: ml, x2: W - mr, y1: y(t), y2: y(t) })),
      );
      const yAxis = s(
        'g',
        { class: 'axis' },
        scale.ticks.map((t, i) => s('text', { x: ml - 8, y: y(t), 'text-anchor': 'end', 'dominant-baseline': 'middle' }, labels[i])),
      );
      const every = Math.max(1, Math.ceil(56 / band));
      const xAxis = s(
        'g',
        { class: 'axis' },
        items.map((it, i) =>
          (items.length - 1 - i) % every === 0
            ? s('text', { x: ml + (i + 0.5) * band, y: H - 8, 'text-anchor': 'middle' }, fmtDay(it.date))
            : null,
        ),
      );
      const bars = s(
        'g',
        null,
        items.map((it, i) => {
          const v = vals[i];
          const top = y(v);
          const hgt = mt + ph - top;
          return s(
            'g',
            { class: ['bar', v === 0 && 'is-zero', i === hot && 'is-hot'], dataset: { i: String(i) } },
            s('rect', { class: 'hit', x: ml + i * band, y: mt, width: band, height: ph }),
            s('rect', { class: 'fill', x: ml + i * band + (band - bw) / 2, y: v > 0 ? Math.min(top, mt + ph - 2) : mt + ph - 1, width: bw, height: v > 0 ? Math.max(2, hgt) : 1, rx: Math.min(3, bw / 3) }),
          );
        }),
      );
      const svgEl = s(
        'svg',
        { width: W, height: H, viewBox: `0 0 ${W} ${H}`, 'aria-hidden': 'true', focusable: 'false' },
        grid,
        s('line', { class: 'baseline', x1: ml, x2: W - mr, y1: mt + ph, y2: mt + ph }),
        bars,
        yAxis,
        xAxis,
      );
      svgEl.addEventListener('pointermove', (e) => {
        const rect = svgEl.getBoundingClientRect();
        const i = Math.floor((e.clientX - rect.left - ml) / band);
        setHot(i >= 0 && i < items.length ? i : -1);
      });
      svgEl.addEventListener('pointerleave', () => setHot(-1));
      const old = box.querySelector('svg');
      if (old) old.replaceWith(svgEl);
      else box.prepend(svgEl);
      if (hot >= 0) setHot(hot, true);
    }

    function setHot(i, force = false) {
      if (i === hot && !force) return;
      hot = i;
      for (const g of box.querySelectorAll('g.bar')) g.classList.toggle('is-hot', Number(g.dataset.i) === i);
      if (i < 0 || !geo) {
        tip.hidden = true;
        return;
      }
      const it = items[i];
      replace(tip, h('strong', null, fmt(vals[i])), fmtDay(it.date, true));
      tip.hidden = false;
      tip.style.left = `${Math.min(Math.max(geo.ml + (i + 0.5) * geo.band, 60), box.clientWidth - 60)}px`;
      tip.style.top = `${Math.max(geo.y(vals[i]), geo.mt + 30)}px`;
    }

    box.addEventListener('keydown', (e) => {
      if (!items.length) return;
      let i = hot;
      if (e.key === 'ArrowRight') i = Math.min(items.length - 1, hot < 0 ? items.length - 1 : hot + 1);
      else if (e.key === 'ArrowLeft') i = Math.max(0, hot < 0 ? items.length - 1 : hot - 1);
      else if (e.key === 'Home') i = 0;
      else if (e.key === 'End') i = items.length - 1;
      else if (e.key === 'Escape') i = -1;
      else return;
      e.preventDefault();
      setHot(i);
    });
    box.addEventListener('focus', () => {
      if (hot < 0 && items.length) setHot(items.length - 1);
    });
    box.addEventListener('blur', () => setHot(-1));
    box.appendChild(tip);

    const ro = new ResizeObserver(() => {
      if (box.isConnected) draw();
    });
    ro.observe(box);

    const table = h(
      'details',
      { class: 'chart-data' },
      h('summary', null, 'Show as table'),
      h(
        'div',
        { class: 'table-wrap' },
        h(
          'table',
          { class: 'table' },
          h('caption', { class: 'visually-hidden' }, title),
          h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Day (UTC)'), h('th', { scope: 'col', class: 'num' }, title))),
          h('tbody', null, items.map((it, i) => h('tr', null, h('td', null, fmtDay(it.date, true)), h('td', { class: 'num' }, fmt(vals[i]))))),
        ),
      ),
    );

    return h(
      'section',
      { class: 'card chart-card', dataset: { chart: title } },
      h('h3', null, title),
      h('p', { class: 'chart-sub' }, sub || `${fmt(total)} total · ${withData} of ${items.length} days with activity`),
      box,
      table,
    );
  }

  function byModelCard(rows) {
    const sorted = rows.slice().sort((a, b) => Number(b.total_cost) - Number(a.total_cost) || b.total_requests - a.total_requests);
    const max = Math.max(0, ...sorted.map((r) => Number(r.total_cost)));
    const maxReq = Math.max(0, ...sorted.map((r) => Number(r.total_requests)));
    return h(
      'section',
      { class: 'card section', 'aria-labelledby': 'by-model-title', dataset: { section: 'by-model' } },
      h('div', { class: 'card-pad' }, h('h3', { id: 'by-model-title' }, 'Spend by model'), h('p', { class: 'chart-sub muted small' }, 'In the selected range.')),
      sorted.length
        ? h(
            'div',
            { class: 'by-model' },
            sorted.map((r) => {
              const frac = max > 0 ? Number(r.total_cost) / max : maxReq > 0 ? r.total_requests / maxReq : 0;
              const fill = h('span');
              fill.style.width = `${(frac * 100).toFixed(2)}%`;
              return h(
                'div',
                { class: 'model-row', dataset: { model: r.model } },
                h('div', { class: 'model-name' }, r.model, h('span', { class: 'model-provider' }, providerName(r.provider))),
                h('div', { class: 'model-bar', role: 'presentation' }, fill),
                h('div', { class: 'model-figures' }, h('strong', null, fmtUsd(r.total_cost)), h('span', null, `${fmtInt(r.total_requests)} req · ${fmtCompact(r.total_usage_tokens)} tokens`)),
              );
            }),
          )
        : h('p', { class: 'muted card-pad' }, 'No requests in this range.'),
    );
  }

  /** Totals, charts and spend by model for the wallet (keyId null) or one key. */
  function usageSection({ keyId, rangeState }) {
    const el = h('div', { class: 'usage-body' }, loadingBlock('Loading usage…'));
    let seq = 0;
    const reload = async () => {
      const mySeq = ++seq;
      const r = computeRange(rangeState);
      const qs = new URLSearchParams({ start: r.start, end: r.end });
      const path = keyId ? `/v1/spend_keys/${enc(keyId)}/usage?${qs}` : `/v1/usage?${qs}`;
      el.setAttribute('aria-busy', 'true');
      try {
        const data = await api('GET', path);
        if (mySeq !== seq || !el.isConnected) return;
        renderUsage(el, data, r);
      } catch (err) {
        if (err.expired || mySeq !== seq) return;
        replace(el, errorBlock(err, reload));
      } finally {
        el.removeAttribute('aria-busy');
      }
    };
    const { seg, custom } = rangeControls(rangeState, reload, { allowCustom: !keyId || true });
    const controls = h('div', { class: 'custom-range' }, seg, custom);
    return { el, reload, controls, range: () => computeRange(rangeState) };
  }

  function renderUsage(el, data, r) {
    const items = (data.items || []).slice().sort((a, b) => (a.date < b.date ? -1 : 1));
    const t = data.totals || {};
    const reqs = Number(t.total_requests || 0);
    const cost = Number(t.total_cost || 0);
    const tile = (label, value, sub, name) =>
      h('div', { class: 'card stat', dataset: { total: name } }, h('div', { class: 'stat-label' }, label), h('div', { class: 'stat-value' }, value), h('div', { class: 'stat-sub' }, sub));
    replace(
      el,
      h(
        'div',
        { class: 'totals', role: 'group', 'aria-label': `Totals, ${r.label}` },
        tile('Spend', fmtUsd(cost), r.label, 'spend'),
        tile('Requests', fmtInt(reqs), r.label, 'requests'),
        tile('Tokens', fmtInt(t.total_usage_tokens || 0), 'input + output', 'tokens'),
        tile('Average per request', reqs ? fmtUsd(cost / reqs) : '—', reqs ? `${fmtInt(Math.round(Number(t.total_usage_tokens || 0) / reqs))} tokens` : 'no requests', 'average'),
      ),
      h(
        'div',
        { class: 'charts' },
        barChart({ title: 'Spend per day', items, value: (it) => Number(it.total_cost || 0), fmt: fmtUsd, axis: fmtUsdAxis }),
        barChart({ title: 'Requests per day', items, value: (it) => Number(it.total_requests || 0), fmt: fmtInt, axis: (v) => fmtCompact(v), integer: true }),
      ),
      byModelCard(data.by_model || []),
    );
  }

  // ---------------------------------------------------------------------------
  // Request log
  // ---------------------------------------------------------------------------

  const PAGE_SIZE = 20;

  /**
   * Cursor paging over a wallet API list (`data`, `has_more`, `next_cursor`): Previous
   * and Next buttons, a "Page N · things a–b" line, and `load`/`reload`.
   * `fetchPage(cursor)` returns the API's answer; `render(rows, page)` shows a page;
   * `onError(err, retry)` shows a failure; `busy` elements get `aria-busy` while loading;
   * `pageSize` is the `limit` that `fetchPage` asks for (it numbers the rows).
   */
  function cursorPager({ noun, fetchPage, render, onError, busy = [], pageSize = PAGE_SIZE }) {
    const info = h('span', { class: 'pager-info', 'aria-live': 'polite' });
    const prev = h('button', { type: 'button', class: 'btn btn-sm', disabled: true }, icon('left'), 'Previous');
    const next = h('button', { type: 'button', class: 'btn btn-sm', disabled: true }, 'Next', icon('right'));
    let cursors = [null];
    let page = 0;
    let seq = 0;
    let nextCursor = null;

    async function load() {
      const mySeq = ++seq;
      for (const el of busy) el.setAttribute('aria-busy', 'true');
      prev.disabled = true;
      next.disabled = true;
      try {
        const res = await fetchPage(cursors[page]);
        if (mySeq !== seq) return;
        nextCursor = res.has_more ? res.next_cursor || null : null;
        const rows = res.data || [];
        render(rows, page);
        prev.disabled = page === 0;
        next.disabled = !nextCursor;
        info.textContent = rows.length ? `Page ${page + 1} · ${noun} ${fmtInt(page * pageSize + 1)}–${fmtInt(page * pageSize + rows.length)}` : '';
      } catch (err) {
        if (err.expired || mySeq !== seq) return;
        onError(err, load);
        prev.disabled = page === 0;
      } finally {
        for (const el of busy) el.removeAttribute('aria-busy');
      }
    }

    prev.addEventListener('click', () => {
      if (page === 0) return;
      page--;
      load();
    });
    next.addEventListener('click', () => {
      if (!nextCursor) return;
      cursors = cursors.slice(0, page + 1);
      cursors.push(nextCursor);
      page++;
      load();
    });
    return {
      el: h('div', { class: 'pager' }, info, h('div', { class: 'pager-buttons' }, prev, next)),
      load,
      reload: () => {
        cursors = [null];
        page = 0;
        return load();
      },
    };
  }

  function requestLogSection({ keyId, keysById, showKey, range }) {
    const titleId = uid('log');
    const tableHost = h('div', null, loadingBlock('Loading requests…'));
    const exportLink = h('a', { class: 'btn btn-sm', download: '', href: '#' }, icon('download'), 'Export CSV');
    const updateExport = () => {
      const r = range();
      const qs = new URLSearchParams();
      if (keyId) qs.set('spend_key_id', keyId);
      qs.set('start', r.start);
      qs.set('end', r.end);
      exportLink.href = `/v1/requests/export?${qs}`;
      exportLink.setAttribute('download', `spendgate-requests-${r.from}-to-${r.to}.csv`);
      exportLink.title = `Every request in ${r.label.toLowerCase()} as CSV`;
    };
    exportLink.addEventListener('focus', updateExport);
    exportLink.addEventListener('pointerenter', updateExport);
    exportLink.addEventListener('click', updateExport);

    const pager = cursorPager({
      noun: 'requests',
      busy: [tableHost],
      fetchPage: (cursor) => {
        updateExport();
        const qs = new URLSearchParams({ limit: String(PAGE_SIZE) });
        if (keyId) qs.set('spend_key_id', keyId);
        if (cursor) qs.set('cursor', cursor);
        return api('GET', `/v1/requests?${qs}`);
      },
      render: renderRows,
      onError: (err, retry) => replace(tableHost, errorBlock(err, retry)),
    });

    function renderRows(rows, page) {
      if (!rows.length) {
        replace(
          tableHost,
          h(
            'div',
            { class: 'empty empty-sm' },
            h('h3', null, page === 0 ? 'No requests yet' : 'No more requests'),
            h('p', null, page === 0 ? (keyId ? 'Requests made with this key show up here a few seconds after they finish.' : 'Requests made with any of your keys show up here a few seconds after they finish.') : 'You reached the end of the log.'),
          ),
        );
        return;
      }
      const head = ['Time', showKey ? 'Key' : null, 'Model', 'Tokens', 'Cost', 'Status', 'Latency'].filter(Boolean);
      const numeric = new Set(['Tokens', 'Cost', 'Latency']);
      const table = h(
        'table',
        { class: 'table responsive', 'aria-labelledby': titleId },
        h('thead', null, h('tr', null, head.map((c) => h('th', { scope: 'col', class: numeric.has(c) ? 'num' : null }, c)))),
        h(
          'tbody',
          null,
          rows.map((r) => {
            const u = r.model_usage || {};
            const k = keysById.get(r.spend_key_id);
            const tokTitle = [
              `Input: ${fmtInt(u.input_tokens || 0)}`,
              `Cached input: ${fmtInt(u.cached_input_tokens || 0)}`,
              `Cache write: ${fmtInt(u.cache_write_tokens || 0)}`,
              `Output: ${fmtInt(u.output_tokens || 0)}`,
            ].join('\n');
            const statusCls = r.status === 'completed' ? 'badge-ok' : r.status === 'error' ? 'badge-error' : 'badge-cancelled';
            const statusLabel = { completed: 'Completed', error: 'Error', cancelled: 'Cancelled' }[r.status] || r.status;
            return h(
              'tr',
              { dataset: { requestId: r.request_id } },
              h('td', { class: 'c-time' }, timeEl(r.created_at), h('span', { class: 'sub' }, fmtAbs(r.created_at).replace(/^\w+, /, ''))),
              showKey
                ? h(
                    'td',
                    { class: 'c-key' },
                    k ? h('a', { href: `#/keys/${enc(r.spend_key_id)}` }, k.name) : h('span', { class: 'muted', title: r.spend_key_id }, 'Revoked key'),
                  )
                : null,
              h('td', { class: 'model c-model' }, r.model, h('span', { class: 'sub' }, `${providerName(r.provider)} · ${r.endpoint || ''}`)),
              h('td', { class: 'num c-tokens', title: tokTitle }, fmtInt(u.total_tokens || 0), h('span', { class: 'sub' }, `${fmtInt(u.input_tokens || 0)} in · ${fmtInt(u.output_tokens || 0)} out`)),
              h('td', { class: 'num c-cost' }, fmtUsd(r.cost)),
              h('td', { class: 'c-status' }, h('span', { class: ['badge', statusCls], title: r.http_status ? `HTTP ${r.http_status}` : null }, statusLabel), r.http_status && r.status !== 'completed' ? h('span', { class: 'sub' }, `HTTP ${r.http_status}`) : null),
              h('td', { class: 'num c-latency' }, fmtLatency(r.latency_ms)),
            );
          }),
        ),
      );
      replace(tableHost, h('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-labelledby': titleId }, table));
    }

    const el = h(
      'section',
      { class: 'section', 'aria-labelledby': titleId, dataset: { section: 'requests' } },
      h(
        'div',
        { class: 'section-head' },
        h('div', null, h('h2', { id: titleId }, 'Request log'), h('p', { class: 'sub' }, 'Newest first. Hover the tokens for the breakdown.')),
        h('div', { class: 'tools' }, exportLink),
      ),
      h('div', { class: 'card table-card' }, tableHost, pager.el),
    );
    return { el, reload: pager.reload };
  }

  // ---------------------------------------------------------------------------
  // Usage page
  // ---------------------------------------------------------------------------

  async function viewUsage(ctx, params) {
    pageTitle('Usage');
    const rangeState = {
      kind: ['7', '30', '90', 'custom'].includes(params.get('range')) ? params.get('range') : '30',
      from: params.get('from') || null,
      to: params.get('to') || null,
    };
    let keyId = params.get('key') || '';
    const keySel = h('select', { id: 'usage-key', class: 'select' }, h('option', { value: '' }, 'All keys'));
    const refreshBtn = h('button', { type: 'button', class: 'btn', id: 'refresh' }, icon('refresh'), 'Refresh');
    const host = h('div');
    const logHost = h('div');
    replace(
      main,
      pageHead({ title: 'Usage', lede: 'Spend, requests and tokens per UTC day, for the whole wallet or one key.' }),
      h('div', { class: 'usage-controls' }, h('div', { class: 'field' }, h('label', { class: 'label', for: 'usage-key' }, 'Key'), keySel), h('div', { class: 'range-host' }), refreshBtn),
      host,
      logHost,
    );
    focusHeading();

    let keys = [];
    try {
      keys = await loadAllKeys();
    } catch (err) {
      if (err.expired || !ctx.alive()) return;
      replace(host, errorBlock(err, () => viewUsage(newCtx(), params)));
      return;
    }
    if (!ctx.alive()) return;
    const keysById = new Map(keys.map((k) => [k.spend_key_id, k]));
    for (const k of keys.slice().sort((a, b) => a.name.localeCompare(b.name))) {
      keySel.appendChild(h('option', { value: k.spend_key_id }, `${k.name} (${k.key_preview})`));
    }
    if (keyId && !keysById.has(keyId)) keyId = '';
    keySel.value = keyId;

    let usage;
    let log;
    const syncHash = () => {
      const qs = new URLSearchParams();
      if (keyId) qs.set('key', keyId);
      if (rangeState.kind !== '30') qs.set('range', rangeState.kind);
      if (rangeState.kind === 'custom' && rangeState.from && rangeState.to) {
        qs.set('from', rangeState.from);
        qs.set('to', rangeState.to);
      }
      const hash = `#/usage${qs.toString() ? `?${qs}` : ''}`;
      if (location.hash !== hash) history.replaceState(null, '', hash);
    };
    const build = () => {
      usage = usageSection({ keyId: keyId || null, rangeState });
      const origReload = usage.reload;
      usage.reload = () => {
        syncHash();
        return origReload();
      };
      const { seg, custom } = rangeControls(rangeState, () => usage.reload());
      replace(main.querySelector('.range-host'), h('div', { class: 'custom-range' }, seg, custom));
      replace(host, usage.el);
      log = requestLogSection({ keyId: keyId || null, keysById, showKey: !keyId, range: () => computeRange(rangeState) });
      replace(logHost, log.el);
      usage.reload();
      log.reload();
    };
    keySel.addEventListener('change', () => {
      keyId = keySel.value;
      build();
    });
    refreshBtn.addEventListener('click', async () => {
      busy(refreshBtn, true);
      await Promise.all([usage.reload(), log.reload()]);
      busy(refreshBtn, false);
      announce('Refreshed');
    });
    build();
  }

  // ---------------------------------------------------------------------------
  // Activity: the wallet's audit log
  // ---------------------------------------------------------------------------

  const ACTION_LABEL = {
    'wallet.created': 'Wallet created',
    'wallet_key.created': 'Wallet API key created',
    'wallet_key.revoked': 'Wallet API key revoked',
    'spend_key.created': 'Spend key created',
    'spend_key.updated': 'Spend key changed',
    'spend_key.rotated': 'Spend key rotated',
    'spend_key.revoked': 'Spend key revoked',
    'dashboard_session.created': 'Signed in to the dashboard',
    'dashboard_session.revoked': 'Signed out of the dashboard',
    'webhook.created': 'Webhook added',
    'webhook.deleted': 'Webhook deleted',
  };

  /** An id cut for a table cell (the whole id in its title). */
  const shortId = (id) => (id && id.length > 14 ? `${id.slice(0, 12)}…` : id || '');

  function actorEl(actor) {
    if (!actor) return '';
    if (actor.type === 'operator') return 'Operator (command line)';
    const via = actor.type === 'dashboard_session' ? 'Dashboard' : 'API';
    return h('span', { title: `${via}, wallet API key ${actor.id}` }, `${via} · ${shortId(actor.id)}`);
  }

  function changeValue(v) {
    if (v === null || v === undefined) return 'none';
    if (Array.isArray(v)) return v.join(', ');
    if (typeof v === 'object') {
      if ('amount' in v && 'cycle' in v) return `$${v.amount} ${v.cycle}`;
      if ('count' in v && 'cycle' in v) return `${v.count} ${v.cycle}`;
      if ('rpm' in v) return `${v.rpm} rpm${v.burst ? `, burst ${v.burst}` : ''}`;
      return JSON.stringify(v);
    }
    return String(v);
  }

  /**
   * One line per changed field: `field: from → to`; on a creation, `field: value` for
   * each setting that is set.
   */
  function changeLines(changes) {
    return Object.entries(changes || {}).flatMap(([field, v]) => {
      const diff = v && typeof v === 'object' && !Array.isArray(v) && 'from' in v && 'to' in v && Object.keys(v).length === 2;
      if (diff) return [`${field}: ${changeValue(v.from)} → ${changeValue(v.to)}`];
      return v === null || v === '' ? [] : [`${field}: ${changeValue(v)}`];
    });
  }

  async function viewActivity(ctx) {
    pageTitle('Activity');
    const titleId = uid('activity');
    const tableHost = h('div', null, loadingBlock('Loading activity…'));
    const refreshBtn = h('button', { type: 'button', class: 'btn', id: 'refresh' }, icon('refresh'), 'Refresh');
    const pager = cursorPager({
      noun: 'entries',
      busy: [tableHost, refreshBtn],
      fetchPage: (cursor) => {
        const qs = new URLSearchParams({ limit: String(PAGE_SIZE) });
        if (cursor) qs.set('cursor', cursor);
        return api('GET', `/v1/audit_log?${qs}`);
      },
      render: (rows) => {
        if (ctx.alive()) render(rows);
      },
      onError: (err, retry) => replace(tableHost, errorBlock(err, retry)),
    });
    replace(
      main,
      pageHead({ title: 'Activity', lede: 'Every change to this wallet: who made it, when, from where, and what changed. Newest first.', actions: [refreshBtn] }),
      h('section', { class: 'section', 'aria-labelledby': titleId, dataset: { section: 'activity' } },
        h('h2', { id: titleId, class: 'visually-hidden' }, 'Audit log'),
        h('div', { class: 'card table-card' }, tableHost, pager.el)),
    );
    focusHeading();

    function render(rows) {
      if (!rows.length) {
        replace(tableHost, h('div', { class: 'empty empty-sm' }, h('h3', null, 'No activity yet'), h('p', null, 'Changes to keys and sign-ins show up here.')));
        return;
      }
      const table = h(
        'table',
        { class: 'table stacked', 'aria-labelledby': titleId },
        h('thead', null, h('tr', null, ['Time', 'Action', 'By, from', 'Changes'].map((c) => h('th', { scope: 'col' }, c)))),
        h(
          'tbody',
          null,
          rows.map((e) => {
            const target = e.target_id || '';
            const targetEl = target.startsWith('key_') && e.action !== 'spend_key.revoked'
              ? h('a', { href: `#/keys/${enc(target)}`, title: target }, shortId(target))
              : h('span', { class: 'mono', title: target }, shortId(target));
            const lines = changeLines(e.changes);
            return h(
              'tr',
              { dataset: { auditId: e.audit_id, action: e.action } },
              h('td', { class: 'c-time' }, timeEl(e.created_at), h('span', { class: 'sub' }, fmtAbs(e.created_at).replace(/^\w+, /, ''))),
              h('td', { class: 'c-action' }, ACTION_LABEL[e.action] || e.action, h('span', { class: 'sub' }, targetEl)),
              h(
                'td',
                { class: 'c-by' },
                actorEl(e.actor),
                e.ip ? h('span', { class: 'sub', title: e.user_agent || null }, e.user_agent ? `${e.ip} · ${e.user_agent.slice(0, 24)}${e.user_agent.length > 24 ? '…' : ''}` : e.ip) : null,
              ),
              h('td', { class: 'c-changes' }, lines.length ? h('ul', { class: 'changes' }, lines.map((l) => h('li', null, l))) : '—'),
            );
          }),
        ),
      );
      replace(tableHost, h('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-labelledby': titleId }, table));
    }

    refreshBtn.addEventListener('click', () => pager.reload());
    await pager.load();
  }

  // ---------------------------------------------------------------------------
  // Alerts: budget-alert webhooks and their delivery logs
  // ---------------------------------------------------------------------------

  /** The events a webhook can ask for: [event, label, what sends it]. */
  const ALERT_EVENTS = [
    ['spend.threshold', 'Spend threshold reached', 'A key’s spend reaches one of the thresholds below, as a percent of its spend limit.'],
    ['request_limit.reached', 'Request limit reached', 'A key uses up its request limit for the cycle.'],
    ['spend_key.expired', 'Key expired', 'A key passes its expiry time.'],
  ];
  const EVENT_LABEL = { ...Object.fromEntries(ALERT_EVENTS.map(([e, label]) => [e, label])), 'webhook.test': 'Test event' };
  const DEFAULT_THRESHOLDS = [50, 80, 100];
  const DELIVERY_PAGE = 10;

  const thresholdsText = (list) => (list || []).map((t) => `${t}%`).join(' · ');

  function deliveryBadge(d) {
    const [cls, label, title] =
      d.status === 'delivered'
        ? ['badge-ok', 'Delivered', 'Your endpoint answered with a 2xx status']
        : d.status === 'failed'
          ? ['badge-error', 'Failed', 'Given up after the last attempt']
          : d.attempts > 0
            ? ['badge-paused', 'Retrying', 'The last attempt failed: it is tried again later']
            : ['badge-cancelled', 'Pending', 'Queued: sent within a few seconds'];
    return h('span', { class: ['badge', cls], title }, label);
  }

  /** The receiver's last answer in words, for a toast. */
  function answerText(d) {
    if (d.last_status !== null && d.last_status !== undefined) return `HTTP ${d.last_status}${d.last_error ? ` (${d.last_error})` : ''}`;
    return d.last_error || 'no answer';
  }

  function answerEl(d) {
    if (d.last_status !== null && d.last_status !== undefined) {
      return [h('span', { class: 'mono' }, `HTTP ${d.last_status}`), d.last_error ? h('span', { class: 'sub', title: d.last_error }, d.last_error) : null];
    }
    if (d.last_error) return h('span', { class: 'answer-error', title: d.last_error }, d.last_error);
    return h('span', { class: 'muted' }, d.attempts ? 'No answer' : 'Not sent yet');
  }

  function deliveryWhen(d) {
    if (d.delivered_at) return h('span', null, 'Delivered ', timeEl(d.delivered_at));
    if (d.status === 'failed') return h('span', { class: 'muted' }, 'Given up');
    if (d.attempts > 0 && d.next_attempt_at) return h('span', null, 'Next try ', timeEl(d.next_attempt_at));
    return h('span', { class: 'muted' }, 'Queued');
  }

  /** What the alert was about: the key (linked) and the threshold reached. */
  function deliveryAbout(d) {
    const data = (d.payload && d.payload.data) || {};
    const key = data.spend_key;
    const parts = [];
    if (data.threshold_percent !== null && data.threshold_percent !== undefined) parts.push(`${data.threshold_percent}% of the spend limit`);
    if (key && key.spend_key_id) parts.push(h('a', { href: `#/keys/${enc(key.spend_key_id)}`, title: key.spend_key_id }, key.name || shortId(key.spend_key_id)));
    if (!parts.length) return null;
    return h('span', { class: 'sub' }, parts.flatMap((p, i) => (i ? [' · ', p] : [p])));
  }

  async function viewAlerts(ctx) {
    pageTitle('Alerts');
    const refreshBtn = h('button', { type: 'button', class: 'btn', id: 'refresh' }, icon('refresh'), 'Refresh');
    const revealHost = h('div');
    const listTitleId = uid('webhooks');
    const listTitle = h('h2', { id: listTitleId, tabindex: '-1' }, 'Webhooks');
    const listHost = h('div', null, loadingBlock('Loading webhooks…'));
    const formHost = h('div');
    replace(
      main,
      pageHead({
        title: 'Alerts',
        lede: 'Webhooks are told when a key reaches a threshold of its spend limit, reaches its request limit, or expires: a signed JSON POST to your endpoint, retried until it is accepted.',
        actions: [refreshBtn],
      }),
      revealHost,
      h(
        'section',
        { class: 'section', 'aria-labelledby': listTitleId, dataset: { section: 'webhooks' } },
        h('div', { class: 'section-head' }, h('div', null, listTitle, h('p', { class: 'sub' }, 'Newest first, each with its delivery log.'))),
        listHost,
      ),
      formHost,
    );
    focusHeading();

    let form = null;
    let loadSeq = 0;

    /** Fetches the webhooks and the keys, and shows them (and the delivery logs). */
    async function load() {
      const mySeq = ++loadSeq;
      listHost.setAttribute('aria-busy', 'true');
      let hooks;
      let keys;
      try {
        [hooks, keys] = await Promise.all([api('GET', '/v1/webhooks').then((r) => r.data || []), loadAllKeys()]);
      } catch (err) {
        if (err.expired || !ctx.alive() || mySeq !== loadSeq) return;
        replace(listHost, errorBlock(err, load));
        return;
      } finally {
        listHost.removeAttribute('aria-busy');
      }
      if (!ctx.alive() || mySeq !== loadSeq) return;
      const keysById = new Map(keys.map((k) => [k.spend_key_id, k]));
      if (!form) {
        form = webhookForm();
        replace(formHost, form.el);
      }
      form.setKeys(keys);
      if (!hooks.length) {
        replace(
          listHost,
          h(
            'div',
            { class: 'card empty empty-sm' },
            icon('bell', { class: 'empty-art' }),
            h('h3', null, 'No webhooks yet'),
            h('p', null, 'Add a webhook to hear about a key before it runs out of budget: at 50, 80 and 100% of its spend limit, when it uses up its request limit, and when it expires.'),
            h('p', null, h('button', { type: 'button', class: 'btn btn-primary', onclick: () => form.focus() }, icon('plus'), 'Add a webhook')),
          ),
        );
        return;
      }
      const cards = hooks
        .slice()
        .reverse()
        .map((w) => webhookCard(w, keysById));
      replace(listHost, h('div', { class: 'webhook-list' }, cards.map((c) => c.el)));
      await Promise.all(cards.map((c) => c.pager.load()));
    }

    function webhookCard(w, keysById) {
      const titleId = uid('wh');
      const logId = uid('wh-log');
      const tableHost = h('div', null, loadingBlock('Loading deliveries…'));
      const pager = cursorPager({
        noun: 'deliveries',
        pageSize: DELIVERY_PAGE,
        busy: [tableHost],
        fetchPage: (cursor) => {
          const qs = new URLSearchParams({ limit: String(DELIVERY_PAGE) });
          if (cursor) qs.set('cursor', cursor);
          return api('GET', `/v1/webhooks/${enc(w.webhook_id)}/deliveries?${qs}`);
        },
        render: (rows, page) => {
          if (ctx.alive()) renderDeliveries(rows, page);
        },
        onError: (err, retry) => {
          if (err.status === 404) load();
          else replace(tableHost, errorBlock(err, retry));
        },
      });

      function renderDeliveries(rows, page) {
        if (!rows.length) {
          replace(
            tableHost,
            h(
              'div',
              { class: 'empty empty-sm' },
              h('p', null, page === 0 ? 'No alerts sent yet. Send a test event to try your endpoint and its signature check.' : 'You reached the end of the log.'),
            ),
          );
          return;
        }
        const table = h(
          'table',
          { class: 'table stacked deliveries', 'aria-labelledby': `${logId} ${titleId}` },
          h(
            'thead',
            null,
            h('tr', null, ['Time', 'Event', 'Status', 'Attempts', 'Last answer', 'Delivered / next try'].map((c) => h('th', { scope: 'col', class: c === 'Attempts' ? 'num' : null }, c))),
          ),
          h(
            'tbody',
            null,
            rows.map((d) =>
              h(
                'tr',
                { dataset: { deliveryId: d.delivery_id, event: d.event, status: d.status } },
                h('td', { class: 'c-time' }, timeEl(d.created_at), h('span', { class: 'sub' }, fmtAbs(d.created_at).replace(/^\w+, /, ''))),
                h('td', { class: 'c-event' }, EVENT_LABEL[d.event] || d.event, deliveryAbout(d)),
                h('td', { class: 'c-status' }, deliveryBadge(d)),
                h('td', { class: 'num c-attempts', dataset: { label: 'Attempts' } }, fmtInt(d.attempts)),
                h('td', { class: 'c-answer', dataset: { label: 'Last answer' } }, answerEl(d)),
                h('td', { class: 'c-when' }, deliveryWhen(d)),
              ),
            ),
          ),
        );
        replace(tableHost, h('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-labelledby': `${logId} ${titleId}` }, table));
      }

      /** After a test: watch the delivery until it is tried, then show how it went. */
      async function follow(deliveryId) {
        for (let i = 0; i < 15; i++) {
          await new Promise((r) => setTimeout(r, 1000));
          if (!ctx.alive() || !el.isConnected) return;
          let d;
          try {
            const res = await api('GET', `/v1/webhooks/${enc(w.webhook_id)}/deliveries?limit=${DELIVERY_PAGE}`);
            d = (res.data || []).find((x) => x.delivery_id === deliveryId);
          } catch {
            return;
          }
          if (!d || !ctx.alive() || !el.isConnected) return;
          if (d.status === 'pending' && !d.attempts) continue;
          await pager.reload();
          if (d.status === 'delivered') toast(`Test event delivered: your endpoint answered ${answerText(d)}.`, 'ok');
          else toast(`The test event was not accepted: ${answerText(d)}.${d.status === 'pending' ? ' It is tried again later.' : ''}`, 'error', 8000);
          return;
        }
      }

      const testBtn = h('button', { type: 'button', class: 'btn btn-sm', 'aria-label': `Send test to ${w.url}` }, icon('send'), 'Send test');
      testBtn.addEventListener('click', async () => {
        busy(testBtn, true);
        let d;
        try {
          d = await api('POST', `/v1/webhooks/${enc(w.webhook_id)}/test`);
        } catch (err) {
          busy(testBtn, false);
          if (err.expired) return;
          toast(err.message, 'error');
          if (err.status === 404) load();
          return;
        }
        busy(testBtn, false);
        if (document.activeElement === document.body && testBtn.isConnected) testBtn.focus();
        toast('Test event queued: it is sent within a few seconds.', 'info');
        await pager.reload();
        follow(d.delivery_id);
      });

      const deleteBtn = h('button', { type: 'button', class: 'btn btn-sm btn-danger-ghost', 'aria-label': `Delete webhook ${w.url}` }, icon('trash'), 'Delete');
      deleteBtn.addEventListener('click', async () => {
        const deleted = await openDialog({
          title: 'Delete this webhook?',
          iconName: 'trash',
          danger: true,
          body: [
            h('p', { class: 'modal-text' }, 'Alerts stop going to ', h('code', { class: 'break' }, w.url), '. Alerts not yet delivered to it are not sent.'),
            'This cannot be undone: to get alerts there again, add it again (with a new signing secret).',
          ],
          confirmLabel: 'Delete webhook',
          confirmClass: 'btn btn-danger',
          onConfirm: async () => {
            try {
              await api('DELETE', `/v1/webhooks/${enc(w.webhook_id)}`);
            } catch (err) {
              if (err.status !== 404) throw err; // Gone already: deleted either way.
            }
          },
        });
        if (!deleted || !ctx.alive()) return;
        toast('The webhook was deleted. No more alerts are sent to it.');
        await load();
        if (ctx.alive()) listTitle.focus();
      });

      const spendOn = w.events.includes('spend.threshold');
      const el = h(
        'article',
        { class: 'card webhook-card', 'aria-labelledby': titleId, dataset: { webhookId: w.webhook_id } },
        h(
          'div',
          { class: 'webhook-head' },
          h('h3', { id: titleId, class: 'webhook-url' }, w.url),
          h('div', { class: 'detail-actions', role: 'group', 'aria-label': 'Webhook actions' }, testBtn, deleteBtn),
        ),
        h(
          'dl',
          { class: 'kv' },
          h('dt', null, 'Keys'),
          h(
            'dd',
            { dataset: { field: 'scope' } },
            !w.spend_key_id
              ? 'All keys'
              : keysById.has(w.spend_key_id)
                ? h('a', { href: `#/keys/${enc(w.spend_key_id)}` }, keysById.get(w.spend_key_id).name)
                : h('span', { class: 'muted', title: w.spend_key_id }, `Revoked key · ${shortId(w.spend_key_id)}`),
          ),
          h('dt', null, 'Events'),
          h('dd', { dataset: { field: 'events' } }, h('span', { class: 'chips' }, w.events.map((e) => h('span', { class: 'chip' }, EVENT_LABEL[e] || e)))),
          h('dt', null, 'Thresholds'),
          h(
            'dd',
            { dataset: { field: 'thresholds' } },
            spendOn ? thresholdsText(w.thresholds) : h('span', { class: 'muted', title: 'Spend threshold alerts are off for this webhook' }, `${thresholdsText(w.thresholds)} (off)`),
          ),
          h('dt', null, 'Added'),
          h('dd', null, timeEl(w.created_at), h('span', { class: 'muted mono' }, ` · ${w.webhook_id}`)),
        ),
        h('div', { class: 'webhook-log' }, h('h4', { id: logId }, 'Deliveries'), h('div', { class: 'card table-card' }, tableHost, pager.el)),
      );
      return { el, pager };
    }

    /** The signing secret, shown once after a webhook is added. */
    function showSecret(created) {
      const titleId = uid('wh-secret');
      const title = h('h2', { id: titleId, tabindex: '-1' }, 'Copy the signing secret');
      const verify = `import { createHmac, timingSafeEqual } from 'node:crypto';

// header: the spendgate-signature request header; body: the raw request body.
export function verified(header, body, secret = process.env.SPENDGATE_WEBHOOK_SECRET) {
  const { t, v1 = '' } = Object.fromEntries(header.split(',').map((p) => p.split('=')));
  const expected = createHmac('sha256', secret).update(\`\${t}.\${body}\`).digest('hex');
  const fresh = Math.abs(Date.now() / 1000 - Number(t)) < 300; // refuse replays
  return fresh && v1.length === expected.length && timingSafeEqual(Buffer.from(v1), Buffer.from(expected));
}`;
      replace(
        revealHost,
        h(
          'section',
          { class: 'card secret-hero section', 'aria-labelledby': titleId, dataset: { section: 'webhook-secret' } },
          h(
            'div',
            { class: 'secret-title' },
            h('span', { class: 'secret-icon', 'aria-hidden': 'true' }, icon('key')),
            h('div', { class: 'secret-title-text' }, title, h('p', { class: 'muted small webhook-url' }, created.url)),
          ),
          h(
            'div',
            { class: 'secret-box' },
            h('code', { class: 'secret-value', id: 'webhook-secret', tabindex: '0', 'aria-label': 'The webhook’s signing secret', dataset: { secret: '1' } }, created.secret),
            copyButton(created.secret, { label: 'Copy secret', cls: 'btn btn-primary', what: 'Signing secret', ariaLabel: 'Copy signing secret' }),
          ),
          h(
            'div',
            { class: 'alert alert-warn secret-warning', role: 'note' },
            icon('alert'),
            h(
              'div',
              null,
              h('strong', null, 'You won’t see this secret again.'),
              h(
                'span',
                { class: 'alert-body' },
                'Store it with your receiver now. Every alert carries a ',
                h('code', null, 'spendgate-signature'),
                ' header, ',
                h('code', null, 't=<unix seconds>,v1=<hex>'),
                ': the HMAC-SHA256 of “t.body” under this secret. If you lose it, delete the webhook and add it again.',
              ),
            ),
          ),
          h(
            'details',
            { class: 'webhook-verify' },
            h('summary', null, 'Check the signature in your receiver'),
            codeBlock(verify, 'JavaScript'),
          ),
          h(
            'div',
            { class: 'secret-done' },
            h(
              'button',
              {
                type: 'button',
                class: 'btn',
                onclick: () => {
                  clear(revealHost);
                  listTitle.focus();
                },
              },
              'I’ve saved the secret',
            ),
          ),
        ),
      );
      title.focus({ preventScroll: true });
      revealHost.scrollIntoView({ block: 'start' });
      announce('Webhook added. Its signing secret is shown once on this page: copy it now.');
    }

    function webhookForm() {
      const { alert: formAlert, slot: errSlot, show: showError, clear: clearErrors } = fieldErrors((p) =>
        p === 'events' ? checks[0].cb : null,
      );

      const urlHint = h('p', { class: 'hint', id: uid('hint') }, 'Where the alerts are POSTed, as JSON. It starts with http or https and answers with a 2xx status; anything else is retried, with growing waits.');
      const url = h('input', {
        id: 'wh-url',
        name: 'url',
        class: 'input mono',
        type: 'url',
        inputmode: 'url',
        autocomplete: 'off',
        autocapitalize: 'off',
        spellcheck: 'false',
        maxlength: 2048,
        required: true,
        'aria-describedby': urlHint.id,
      });
      const urlErr = errSlot('url', url);

      const scope = h('select', { id: 'wh-scope', name: 'spend_key_id', class: 'select' });
      const scopeErr = errSlot('spend_key_id', scope);

      const checks = ALERT_EVENTS.map(([value, title, desc]) => {
        const cb = h('input', { type: 'checkbox', name: 'events', value, checked: true });
        return { cb, label: h('label', { class: 'check', dataset: { event: value } }, cb, h('span', { class: 'check-text' }, h('span', { class: 'check-title' }, title), h('span', { class: 'hint' }, desc))) };
      });
      const eventsField = h('fieldset', { class: 'field', id: 'wh-events' }, h('legend', { class: 'label' }, 'Events'), h('div', { class: 'event-checks' }, checks.map((c) => c.label)));
      eventsField.appendChild(errSlot('events', eventsField));

      const thresholdsHint = h('p', { class: 'hint', id: uid('hint') }, 'Percents of a key’s spend limit, from 1 to 100, separated by commas: up to 10. Each is sent once per cycle. Keys without a spend limit have no thresholds.');
      const thresholds = h('input', {
        id: 'wh-thresholds',
        name: 'thresholds',
        class: 'input',
        type: 'text',
        autocomplete: 'off',
        spellcheck: 'false',
        value: DEFAULT_THRESHOLDS.join(', '),
        'aria-describedby': thresholdsHint.id,
      });
      const thresholdsErr = errSlot('thresholds', thresholds);
      const spendCb = checks[0].cb;
      const syncThresholds = () => {
        thresholds.disabled = !spendCb.checked;
      };
      spendCb.addEventListener('change', syncThresholds);

      const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, icon('plus'), 'Add webhook');
      const titleId = uid('wh-form');
      const form = h(
        'form',
        { class: 'form-layout section', novalidate: true, 'aria-labelledby': titleId },
        formAlert,
        h(
          'section',
          { class: 'form-section' },
          h(
            'div',
            { class: 'form-section-head' },
            h('h2', { id: titleId }, 'Add a webhook'),
            h('p', null, 'The signing secret is shown once, when you add it. Send a test event to try your endpoint.'),
          ),
          h(
            'div',
            { class: 'form-section-body' },
            h('div', { class: 'field' }, h('label', { class: 'label', for: url.id }, 'Endpoint URL'), url, urlHint, urlErr),
            h('div', { class: 'field' }, h('label', { class: 'label', for: scope.id }, 'Keys'), scope, h('p', { class: 'hint' }, 'Alerts for every key of the wallet, also keys you create later, or for one key.'), scopeErr),
            eventsField,
            h('div', { class: 'field' }, h('label', { class: 'label', for: thresholds.id }, 'Spend thresholds', h('span', { class: 'opt' }, '% of the spend limit')), thresholds, thresholdsHint, thresholdsErr),
          ),
        ),
        h('div', { class: 'form-actions' }, submit),
      );
      thresholds.style.maxWidth = '260px';

      function readForm() {
        const errs = [];
        const body = { url: url.value.trim(), spend_key_id: scope.value || null };
        if (!body.url) errs.push(['url', 'Enter the address to send the alerts to.']);
        body.events = checks.filter((c) => c.cb.checked).map((c) => c.cb.value);
        if (!body.events.length) errs.push(['events', 'Choose at least one event.']);
        if (spendCb.checked) {
          const parts = thresholds.value.split(/[\s,;%]+/).filter(Boolean);
          if (!parts.length) errs.push(['thresholds', 'Enter at least one percent, like 50, 80, 100.']);
          else if (parts.some((x) => !/^\d+$/.test(x))) errs.push(['thresholds', 'Enter whole percents from 1 to 100, separated by commas.']);
          else body.thresholds = parts.map(Number);
        }
        return { body, errs };
      }

      function reset() {
        url.value = '';
        scope.value = '';
        for (const c of checks) c.cb.checked = true;
        thresholds.value = DEFAULT_THRESHOLDS.join(', ');
        syncThresholds();
      }

      form.addEventListener('submit', async (e) => {
        e.preventDefault();
        clearErrors();
        const { body, errs } = readForm();
        if (errs.length) {
          reportErrors(errs, showError);
          return;
        }
        busy(submit, true);
        let created;
        try {
          created = await api('POST', '/v1/webhooks', body);
        } catch (err) {
          busy(submit, false);
          if (err.expired || !ctx.alive()) return;
          const target = showError(err.param, err.message);
          if (target && target.focus) target.focus();
          announce(err.message);
          return;
        }
        busy(submit, false);
        if (!ctx.alive()) return;
        reset();
        showSecret(created);
        load();
      });

      return {
        el: form,
        focus: () => {
          form.scrollIntoView({ block: 'start' });
          url.focus({ preventScroll: true });
        },
        /** The scope choices: every key of the wallet, by name (the choice is kept). */
        setKeys: (keys) => {
          const value = scope.value;
          replace(
            scope,
            h('option', { value: '' }, 'All keys'),
            keys
              .slice()
              .sort((a, b) => a.name.localeCompare(b.name))
              .map((k) => h('option', { value: k.spend_key_id }, `${k.name} (${k.key_preview})`)),
          );
          scope.value = keys.some((k) => k.spend_key_id === value) ? value : '';
        },
      };
    }

    refreshBtn.addEventListener('click', async () => {
      busy(refreshBtn, true);
      await load();
      busy(refreshBtn, false);
      if (ctx.alive()) announce('Refreshed');
    });
    await load();
  }

  // ---------------------------------------------------------------------------
  // Boot
  // ---------------------------------------------------------------------------

  $('#sign-out').addEventListener('click', signOut);
  $('#skip-link').addEventListener('click', (e) => {
    e.preventDefault();
    const target = main.querySelector('h1') || main;
    target.setAttribute('tabindex', '-1');
    target.focus();
  });

  async function boot() {
    try {
      const sess = await api('GET', '/api/session', undefined, { auth: false });
      setSession(sess);
    } catch (err) {
      setSession(null);
      if (err.status !== 401) {
        showSignIn({ message: err.status === 0 ? err.message : `Could not check your session: ${err.message}`, kind: 'error' });
        return;
      }
    }
    if (!state.session && location.hash && location.hash !== '#/keys') state.returnTo = location.hash;
    route();
  }

  boot();
})();
