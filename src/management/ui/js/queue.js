'use strict';
// One queue's page (#/queues/VHOST/NAME), as RabbitMQ's: details, its Raft members
// (state, term, log indexes, how far each is behind; add or remove a member of a quorum
// queue), bindings (add, unbind), publish message, get messages, delete and purge.

function queueDetails(q) {
  const rows = [
    ['Type', q.type], ['State', stateCell(q)], ['Node', q.node], ['Leader', q.leader],
    ['Members', h`<span id="queue-member-tags">${membersCell(q)}</span>`], ['Policy', q.policy || ''],
    ['Effective policy definition', fmtJson(q.effective_policy_definition)],
    ['Features', features(q)], ['Arguments', fmtJson(q.arguments)],
    ['Consumers', fmtNum(q.consumers)], ['Raft term', q.raft_term], ['Commit index', q.raft_commit_index],
  ];
  const t = q;
  return h`<table class="form" id="queue-details">${rows.filter(r => r[1] !== undefined).map(r =>
    h`<tr><th>${r[0]}</th><td>${r[1]}</td></tr>`)}</table>
    <table class="list" id="queue-counts"><tr><th></th><th class="r">Total</th><th class="r">Ready</th><th class="r">Unacked</th></tr>
    <tr><th>Messages</th><td class="r" id="queue-messages">${fmtNum(t.messages)}</td>
      <td class="r" id="queue-ready">${fmtNum(t.messages_ready)}</td>
      <td class="r" id="queue-unacked">${fmtNum(t.messages_unacknowledged)}</td></tr>
    <tr><th>Rates</th><td class="r">${fmtRate(t, 'messages')}</td><td class="r">${fmtRate(t, 'messages_ready')}</td>
      <td class="r">${fmtRate(t, 'messages_unacknowledged')}</td></tr></table>`;
}

/** The Raft members' table: "behind" is the entries a member lacks of the longest log. */
function membersTable(status) {
  const longest = Math.max(0, ...status.map(m => Number(m['Last Log Index']) || 0));
  return h`<table class="list" id="members-list">
    <tr><th>Node</th><th>Raft state</th><th>Membership</th><th class="r">Term</th>
        <th class="r">Last log index</th><th class="r">Commit index</th><th class="r">Last applied</th>
        <th class="r">Behind</th></tr>
    ${status.map(m => {
      const down = m['Raft State'] === 'down';
      const behind = down ? '?' : longest - (Number(m['Last Log Index']) || 0);
      return h`<tr class="${down ? 'alert' : ''}" data-member="${m['Node Name']}">
        <td>${m['Node Name']}</td><td>${m['Raft State']}</td><td>${m.Membership}</td>
        <td class="r">${m.Term}</td><td class="r">${m['Last Log Index']}</td>
        <td class="r">${m['Commit Index']}</td><td class="r">${m['Last Applied']}</td>
        <td class="r lag">${behind}</td></tr>`;
    })}</table>`;
}

/** One got message, as RabbitMQ's "Get messages" shows it. */
function gotMessage(m, i) {
  return h`<div class="got-message"><h3>Message ${i + 1}</h3><table class="form">
    <tr><th>Exchange</th><td>${m.exchange === '' ? '(AMQP default)' : m.exchange}</td></tr>
    <tr><th>Routing Key</th><td>${m.routing_key}</td></tr>
    <tr><th>Redelivered</th><td>${fmtBool(m.redelivered)}</td></tr>
    <tr><th>Properties</th><td>${fmtJson(m.properties)}</td></tr>
    <tr><th>Payload<br><span class="help">${fmtNum(m.payload_bytes)} bytes<br>Encoding: ${m.payload_encoding}</span></th>
        <td><pre class="payload">${m.payload}</pre></td></tr></table></div>`;
}

Pages.queue = {
  tab: 'queues',
  mount(main, [vhost, name]) {
    const path = objPath(vhost, name);
    const form = (id, rows, submit) => raw(`<form id="${id}"><table class="form">${rows}
      <tr><th></th><td><input type="submit" value="${submit}"></td></tr></table></form>`);
    setHtml(main, h`<h1>Queue <b id="queue-name">${name}</b> <span class="muted">in virtual host ${vhost}</span></h1>
      ${section('queue-overview', 'Overview', raw('<div id="queue-overview-body"></div>'))}
      ${section('queue-members', 'Raft members', raw(`<div id="members-body"></div>
        <form id="add-member-form" hidden>Add a member on
          <select name="node" id="add-member-node"></select> <input type="submit" value="Add member"></form>`))}
      ${section('queue-bindings', 'Bindings', raw(`<div id="bindings-body"></div><h3>Add binding to this queue</h3>
        ${form('bind-form', `<tr><th>From exchange:</th><td><input type="text" name="source" required><span class="mand">*</span></td></tr>
          <tr><th>Routing key:</th><td><input type="text" name="routing_key"></td></tr>`, 'Bind')}`))}
      ${section('publish', 'Publish message', raw(`<p class="help">Message will be published to the default exchange with routing key ${esc(name)}, routing it to this queue.</p>
        ${form('publish-form', `<tr><th>Delivery mode:</th><td><select name="delivery_mode">
            <option value="1">1 - Non-persistent</option><option value="2">2 - Persistent</option></select></td></tr>
          <tr><th>Headers:</th><td><div id="publish-headers"></div></td></tr>
          <tr><th>Payload:</th><td><textarea name="payload" id="publish-payload" rows="5" cols="60"></textarea></td></tr>`,
          'Publish message')}`), true)}
      ${section('get', 'Get messages', raw(`<p class="help">Warning: getting messages from a queue is a destructive action.</p>
        ${form('get-form', `<tr><th>Ack Mode:</th><td><select name="ackmode">
            <option value="ack_requeue_true">Nack message requeue true</option>
            <option value="ack_requeue_false">Ack message requeue false</option>
            <option value="reject_requeue_true">Reject requeue true</option>
            <option value="reject_requeue_false">Reject requeue false</option></select></td></tr>
          <tr><th>Encoding:</th><td><select name="encoding"><option value="auto">Automatic string/base64</option>
            <option value="base64">base64</option></select></td></tr>
          <tr><th>Messages:</th><td><input type="number" name="count" value="1" min="1"></td></tr>`,
          'Get Message(s)')}<div id="get-results"></div>`), true)}
      ${section('delete', 'Delete / purge', raw(`<button type="button" id="delete-queue">Delete Queue</button>
        <button type="button" id="purge-queue">Purge Messages</button>`), true)}`);
    const headers = document.getElementById('publish-headers');
    KeyValue.attach(headers, 'header');

    document.getElementById('publish-form').addEventListener('submit', ev => {
      ev.preventDefault();
      const f = ev.target;
      App.act('Publish message', async () => {
        const body = {
          properties: { delivery_mode: Number(field(f, 'delivery_mode')), headers: KeyValue.read(headers) },
          routing_key: name,
          payload: f.elements.payload.value,
          payload_encoding: 'string',
        };
        const r = await Api.post(`/exchanges/${enc(vhost)}/amq.default/publish`, body);
        return r;
      }).then(ok => {
        if (ok) App.info('Message published.');
      });
    });
    document.getElementById('get-form').addEventListener('submit', async ev => {
      ev.preventDefault();
      const f = ev.target;
      const out = document.getElementById('get-results');
      try {
        const body = { count: Number(field(f, 'count')), ackmode: field(f, 'ackmode'), encoding: field(f, 'encoding'), truncate: 50000 };
        const got = await Api.post(`/queues/${path}/get`, body);
        setHtml(out, got.length === 0 ? h`<p id="queue-empty">Queue is empty</p>`
          : h`${got.map(gotMessage)}<p>The server reported ${fmtNum(got[got.length - 1].message_count)} messages remaining.</p>`);
        await App.refresh();
      } catch (e) {
        App.warn(`Get messages: ${e.message}`);
      }
    });
    document.getElementById('bind-form').addEventListener('submit', ev => {
      ev.preventDefault();
      const f = ev.target;
      const source = field(f, 'source');
      App.act('Bind', () => Api.post(`/bindings/${enc(vhost)}/e/${enc(source)}/q/${enc(name)}`,
        { routing_key: field(f, 'routing_key'), arguments: {} }));
    });
    document.getElementById('bindings-body').addEventListener('click', ev => {
      const d = ev.target.dataset;
      if (d.unbind) {
        App.act('Unbind', () => Api.del(`/bindings/${enc(vhost)}/e/${enc(d.source)}/q/${enc(name)}/${enc(d.unbind)}`));
      }
    });
    document.getElementById('delete-queue').addEventListener('click', () => {
      if (!confirm(`Delete queue ${name}?`)) return;
      Api.del(`/queues/${path}`).then(() => { App.info(`Queue ${name} deleted.`); location.hash = '#/queues'; })
        .catch(e => App.warn(`Delete queue: ${e.message}`));
    });
    document.getElementById('purge-queue').addEventListener('click', () => {
      if (!confirm(`Purge queue ${name}?`)) return;
      App.act('Purge', () => Api.del(`/queues/${path}/contents`)).then(ok => { if (ok) App.info('Queue purged.'); });
    });
    document.getElementById('add-member-form').addEventListener('submit', ev => {
      ev.preventDefault();
      const node = field(ev.target, 'node');
      App.act('Add member', () => Api.post(`/queues/quorum/${path}/replicas/add`, { node }));
    });
    document.getElementById('members-body').addEventListener('click', ev => {
      const node = ev.target.dataset.removeMember;
      if (node && confirm(`Remove the member on ${node}?`)) {
        App.act('Remove member', () => Api.del(`/queues/quorum/${path}/replicas/delete`, { node }));
      }
    });

    return {
      async refresh() {
        const q = await Api.get(`/queues/${path}`);
        setHtml(document.getElementById('queue-overview-body'), queueDetails(q));
        await Pages.queue.members(q, path);
        const bindings = await Api.get(`/queues/${path}/bindings`);
        setHtml(document.getElementById('bindings-body'), h`<table class="list" id="bindings-list">
          <tr><th>From</th><th>Routing key</th><th>Arguments</th><th></th></tr>
          ${bindings.map(b => h`<tr><td>${b.source === '' ? '(Default exchange binding)' : b.source}</td>
            <td>${b.routing_key}</td><td>${fmtJson(b.arguments)}</td>
            <td>${b.source === '' ? '' : h`<button type="button" data-source="${b.source}" data-unbind="${b.properties_key}">Unbind</button>`}</td></tr>`)}
          </table>`);
      },
    };
  },

  /** The members section: every member's Raft state; add/remove for quorum queues. */
  async members(q, path) {
    const body = document.getElementById('members-body');
    const addForm = document.getElementById('add-member-form');
    if (!Array.isArray(q.members)) {
      setHtml(body, h`<p>Not replicated: the queue lives on ${q.node} only.</p>`);
      addForm.hidden = true;
      return;
    }
    const status = (await Api.get(`/queues/quorum/${path}/status`))
      .sort((a, b) => String(a['Node Name']).localeCompare(String(b['Node Name'])));
    const admin = hasTag(App.user, 'administrator');
    const quorum = q.type === 'quorum';
    setHtml(body, h`${membersTable(status)}
      ${quorum && admin ? status.map(m => h`<button type="button" data-remove-member="${m['Node Name']}">Remove ${m['Node Name']}</button> `) : ''}
      ${quorum ? '' : h`<p class="help">A mirrored classic queue's members follow its ha-mode policy.</p>`}`);
    addForm.hidden = !(quorum && admin);
    if (quorum && admin && hasTag(App.user, 'administrator', 'monitoring')) {
      const nodes = await Api.get('/nodes');
      const select = document.getElementById('add-member-node');
      const chosen = select.value;
      setHtml(select, nodes.filter(n => !q.members.includes(n.name)).map(n =>
        h`<option${raw(n.name === chosen ? ' selected' : '')}>${n.name}</option>`));
    }
  },
};
