'use strict';
// Overview: queued messages and message rates (live charts), the global counts, and
// the cluster's nodes with their state, memory, disk alarm and Raft role (how many of
// the replicated queues' groups each leads and is a member of).

/** The message rates charted, as RabbitMQ's Overview charts them (message_stats keys). */
const RATE_SERIES = [
  { key: 'publish', label: 'Publish', color: '#c4a000' },
  { key: 'confirm', label: 'Publisher confirm', color: '#5c7d9f' },
  { key: 'deliver_get', label: 'Deliver / get', color: '#4e9a06' },
  { key: 'redeliver', label: 'Redelivered', color: '#cc0000' },
  { key: 'ack', label: 'Consumer ack', color: '#75507b' },
  { key: 'return_unroutable', label: 'Unroutable (return)', color: '#888' },
];

Pages.overview = {
  tab: 'overview',
  mount(main) {
    setHtml(main, h`<h1>Overview</h1>
      ${section('queued-messages', 'Queued messages', raw(`<div id="queued-chart" class="chart"></div>
        <div class="totals" id="queue-totals"></div>`))}
      ${section('message-rates', 'Message rates', raw(`<div id="rates-chart" class="chart"></div>
        <p class="chart-note" id="rates-note" hidden>The node reports no message rates yet.</p>`))}
      ${section('global-counts', 'Global counts', raw('<div class="totals" id="object-totals"></div>'))}
      ${section('nodes', 'Nodes', raw('<div id="nodes-table"></div>'))}`);
    const queued = Charts.create(document.getElementById('queued-chart'), [
      { label: 'Ready', color: '#edc240' },
      { label: 'Unacked', color: '#afd8f8' },
      { label: 'Total', color: '#cb4b4b' },
    ]);
    const rates = Charts.create(document.getElementById('rates-chart'), RATE_SERIES, { unit: '/s' });
    return {
      async refresh() {
        const o = await Api.get('/overview');
        const t = o.queue_totals || {};
        queued.push([t.messages_ready, t.messages_unacknowledged, t.messages]);
        setHtml(document.getElementById('queue-totals'), h`
          <div class="total" id="total-ready">Ready<b>${fmtNum(t.messages_ready)}</b>${fmtRate(t, 'messages_ready')}</div>
          <div class="total" id="total-unacked">Unacked<b>${fmtNum(t.messages_unacknowledged)}</b>${fmtRate(t, 'messages_unacknowledged')}</div>
          <div class="total" id="total-messages">Total<b>${fmtNum(t.messages)}</b>${fmtRate(t, 'messages')}</div>`);
        const stats = o.message_stats || {};
        const values = RATE_SERIES.map(s => {
          const d = stats[`${s.key}_details`];
          return d && typeof d.rate === 'number' ? d.rate : null;
        });
        rates.push(values);
        document.getElementById('rates-note').hidden = values.some(v => v !== null);
        const c = o.object_totals || {};
        setHtml(document.getElementById('object-totals'),
          ['connections', 'channels', 'exchanges', 'queues', 'consumers'].map(k => h`
            <div class="total" id="count-${k}">${k[0].toUpperCase() + k.slice(1)}<b>${fmtNum(c[k])}</b></div>`));
        await Pages.overview.nodes();
      },
      destroy() { queued.destroy(); rates.destroy(); },
    };
  },

  async nodes() {
    const el = document.getElementById('nodes-table');
    if (!hasTag(App.user, 'administrator', 'monitoring')) {
      setHtml(el, h`<p class="muted">Only monitoring and administrator users see the nodes.</p>`);
      return;
    }
    const [nodes, queues] = await Promise.all([Api.get('/nodes'), Api.get('/queues')]);
    const groups = queues.filter(q => Array.isArray(q.members));
    setHtml(el, h`<table class="list" id="nodes-list">
      <tr><th>Name</th><th>State</th><th>Memory</th><th>Disk</th><th>Uptime</th>
          <th>Raft role</th><th>Cluster address</th></tr>
      ${nodes.map(n => {
        const leads = groups.filter(q => q.leader === n.name).length;
        const member = groups.filter(q => q.members.includes(n.name)).length;
        const disk = n.disk_free !== undefined ? fmtBytes(n.disk_free)
          : (n.disk_free_alarm === undefined ? '' : 'ok');
        return h`<tr data-node="${n.name}">
          <td>${n.name}${n.name === App.overview.node ? raw(' <span class="muted">(this node)</span>') : ''}</td>
          <td class="${n.running ? 'status-green' : 'status-red'}">${n.running ? 'running' : 'down'}</td>
          <td class="r">${n.mem_used !== undefined ? fmtBytes(n.mem_used) : ''}${n.mem_alarm ? raw(' <span class="status-red">alarm</span>') : ''}</td>
          <td>${n.disk_free_alarm ? raw('<span class="status-red">alarm</span>') : disk}</td>
          <td>${n.uptime !== undefined ? fmtUptime(n.uptime) : ''}</td>
          <td>leader of ${leads}, member of ${member} of ${groups.length} queue groups</td>
          <td>${n.cluster_addr}</td></tr>`;
      })}</table>
      <p class="help">Memory, disk and uptime are the answering node's own figures; other nodes show their state.</p>`);
  },
};
