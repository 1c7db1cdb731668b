'use strict';
// Queues: the list (type, features, state, Raft members and leader, message counts and
// rates when reported), a name filter, and RabbitMQ's "Add a new queue" form (type,
// durability, auto delete, arguments as key/value rows with a type each).

/** Key/value rows with a type, as RabbitMQ's forms take arguments and definitions. */
const KeyValue = {
  TYPES: ['String', 'Number', 'Boolean', 'List'],

  row(prefix, i) {
    return h`<div class="kv-row">
      <input type="text" name="${prefix}_${i}_key" placeholder="key" data-kv="${prefix}"> =
      <input type="text" name="${prefix}_${i}_value" placeholder="value" data-kv="${prefix}">
      <select name="${prefix}_${i}_type">${KeyValue.TYPES.map(t => h`<option>${t}</option>`)}</select></div>`;
  },

  /** A growing list of rows in `el`: a new empty row appears once the last is used. */
  attach(el, prefix) {
    setHtml(el, KeyValue.row(prefix, 0));
    el.addEventListener('input', () => {
      const rows = el.querySelectorAll('.kv-row');
      const last = rows[rows.length - 1];
      if (last.querySelector('input').value !== '') {
        el.insertAdjacentHTML('beforeend', String(KeyValue.row(prefix, rows.length)));
      }
    });
  },

  /** Fill the first empty row with `key` (and `value`), as RabbitMQ's hint links do. */
  put(el, key, value, type) {
    const rows = [...el.querySelectorAll('.kv-row')];
    const row = rows.find(r => r.querySelector('input').value === key)
      || rows.find(r => r.querySelector('input').value === '');
    const [k, v] = row.querySelectorAll('input');
    k.value = key;
    if (value !== undefined) v.value = value;
    if (type) row.querySelector('select').value = type;
    el.dispatchEvent(new Event('input'));
  },

  /** The rows as an object, each value converted to its type; throws on a bad one. */
  read(el) {
    const out = {};
    el.querySelectorAll('.kv-row').forEach(row => {
      const [k, v] = [...row.querySelectorAll('input')].map(i => i.value.trim());
      if (k === '') return;
      const type = row.querySelector('select').value;
      if (type === 'Number') {
        if (v === '' || Number.isNaN(Number(v))) throw new Error(`${k}: not a number: ${v}`);
        out[k] = Number(v);
      } else if (type === 'Boolean') {
        if (v !== 'true' && v !== 'false') throw new Error(`${k}: not true or false: ${v}`);
        out[k] = v === 'true';
      } else if (type === 'List') {
        out[k] = v === '' ? [] : v.split(',').map(s => s.trim());
      } else {
        out[k] = v;
      }
    });
    return out;
  },
};

function membersCell(q) {
  if (!Array.isArray(q.members)) return '';
  const online = q.online || [];
  return q.members.map(m => {
    const cls = m === q.leader ? 'tag leader' : (online.includes(m) ? 'tag' : 'tag down');
    return h`<span class="${cls}" title="${m === q.leader ? 'leader' : (online.includes(m) ? 'online' : 'offline')}">${m}</span>`;
  });
}

function stateCell(q) {
  const cls = q.state === 'running' ? 'status-green' : 'status-red';
  return h`<span class="${cls}">${q.state}</span>`;
}

Pages.queues = {
  tab: 'queues',
  mount(main) {
    setHtml(main, h`<h1>Queues</h1>
      ${section('all-queues', 'All queues', raw(`<div class="pager">Filter:
        <input type="text" id="queues-filter" placeholder="name (regular expression)"></div>
        <div id="queues-table"></div>`))}
      ${section('add-queue', 'Add a new queue', raw(`<form id="add-queue-form"><table class="form">
        <tr><th>Type:</th><td><select name="type"><option value="classic">Classic</option>
            <option value="quorum">Quorum</option></select></td></tr>
        <tr><th>Virtual host:</th><td><select name="vhost"></select></td></tr>
        <tr><th>Name:</th><td><input type="text" name="name" id="add-queue-name" required><span class="mand">*</span></td></tr>
        <tr id="durability-row"><th>Durability:</th><td><select name="durable"><option value="true">Durable</option>
            <option value="false">Transient</option></select></td></tr>
        <tr><th>Auto delete:</th><td><select name="auto_delete"><option value="false">No</option>
            <option value="true">Yes</option></select></td></tr>
        <tr><th>Arguments:</th><td><div id="queue-args"></div>
          <div class="hints help">Add: <span data-arg="x-message-ttl" data-type="Number">Message TTL</span>
          <span data-arg="x-max-length" data-type="Number">Max length</span>
          <span data-arg="x-quorum-initial-group-size" data-type="Number">Initial group size</span>
          <span data-arg="x-queue-leader-locator" data-value="balanced">Leader locator</span></div></td></tr>
        <tr><th></th><td><input type="submit" id="add-queue-submit" value="Add queue"></td></tr>
        </table></form>`))}`);
    const form = document.getElementById('add-queue-form');
    const args = document.getElementById('queue-args');
    KeyValue.attach(args, 'arg');
    form.querySelector('.hints').addEventListener('click', ev => {
      const d = ev.target.dataset;
      if (d.arg) KeyValue.put(args, d.arg, d.value, d.type);
    });
    // Quorum queues are always durable: RabbitMQ's form hides the choice.
    form.elements.type.addEventListener('change', () => {
      document.getElementById('durability-row').hidden = field(form, 'type') === 'quorum';
    });
    Api.get('/vhosts').then(v => setHtml(form.elements.vhost, vhostOptions(v)));
    form.addEventListener('submit', ev => {
      ev.preventDefault();
      App.act('Add queue', () => {
        const quorum = field(form, 'type') === 'quorum';
        const arguments_ = KeyValue.read(args);
        if (quorum) arguments_['x-queue-type'] = 'quorum';
        const body = {
          durable: quorum || field(form, 'durable') === 'true',
          auto_delete: field(form, 'auto_delete') === 'true',
          arguments: arguments_,
        };
        return Api.put(`/queues/${objPath(field(form, 'vhost'), field(form, 'name'))}`, body);
      }).then(ok => {
        if (ok) { form.elements.name.value = ''; KeyValue.attach(args, 'arg'); }
      });
    });
    const el = document.getElementById('queues-table');
    const filter = document.getElementById('queues-filter');
    let rows = [];
    const draw = () => {
      let re = null;
      try { re = new RegExp(filter.value); } catch (e) { re = null; }
      const shown = rows.filter(q => !re || re.test(q.name));
      if (shown.length === 0) { setHtml(el, h`<p>... no queues ...</p>`); return; }
      setHtml(el, h`<table class="list" id="queues-list">
        <tr><th>Virtual host</th><th>Name</th><th>Type</th><th>Features</th><th>Policy</th>
            <th>State</th><th>Leader</th><th>Members</th><th class="r">Ready</th>
            <th class="r">Unacked</th><th class="r">Total</th><th class="r">incoming</th>
            <th class="r">deliver / get</th><th class="r">ack</th></tr>
        ${shown.map(q => {
          const s = q.message_stats || {};
          return h`<tr data-queue="${q.name}">
          <td>${q.vhost}</td>
          <td><a href="#/queues/${enc(q.vhost)}/${enc(q.name)}">${q.name}</a></td>
          <td>${q.type}</td><td>${features(q)}</td><td>${q.policy || ''}</td><td>${stateCell(q)}</td>
          <td>${q.leader || ''}</td><td class="members">${membersCell(q)}</td>
          <td class="r">${fmtNum(q.messages_ready)}</td><td class="r">${fmtNum(q.messages_unacknowledged)}</td>
          <td class="r">${fmtNum(q.messages)}</td>
          <td class="r">${fmtRate(s, 'publish')}</td><td class="r">${fmtRate(s, 'deliver_get')}</td>
          <td class="r">${fmtRate(s, 'ack')}</td></tr>`;
        })}</table>`);
    };
    filter.addEventListener('input', draw);
    return {
      async refresh() {
        rows = await Api.list('queues', App.vhost);
        draw();
      },
    };
  },
};
