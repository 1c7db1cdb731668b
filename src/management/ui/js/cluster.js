'use strict';
// Cluster (a tab RabbitMQ lacks): every Raft-replicated queue with its members, leader,
// term and how far each member is behind the longest log, from
// /api/queues/quorum/VHOST/NAME/status; a queue whose group has no live majority (or no
// leader) is highlighted.

/** Status requests in flight at once, so a big cluster does not flood the node. */
const STATUS_PARALLEL = 8;

async function statuses(queues) {
  const out = new Array(queues.length);
  let next = 0;
  const worker = async () => {
    while (next < queues.length) {
      const i = next++;
      const q = queues[i];
      try {
        const status = await Api.get(`/queues/quorum/${objPath(q.vhost, q.name)}/status`);
        out[i] = status.sort((a, b) => String(a['Node Name']).localeCompare(String(b['Node Name'])));
      } catch (e) {
        out[i] = null;
      }
    }
  };
  await Promise.all(Array.from({ length: STATUS_PARALLEL }, worker));
  return out;
}

/** Whether a majority of the queue's members is online. */
function hasMajority(q) {
  const online = (q.online || []).length;
  return online * 2 > q.members.length;
}

function memberCell(q, m, longest) {
  const node = m['Node Name'];
  const down = m['Raft State'] === 'down';
  const behind = down ? '?' : longest - (Number(m['Last Log Index']) || 0);
  // A member that does not answer is shown down even when it is the last leader known.
  const cls = down ? 'tag down' : (node === q.leader ? 'tag leader' : 'tag');
  return h`<div class="member" data-member="${node}"><span class="${cls}">${node}</span>
    ${m['Raft State']} <span class="muted">term ${m.Term}</span>,
    <span class="lag" title="entries behind the longest log">behind ${behind}</span></div>`;
}

Pages.cluster = {
  tab: 'cluster',
  mount(main) {
    setHtml(main, h`<h1>Cluster</h1>
      ${section('cluster-summary', 'Summary', raw('<div id="cluster-summary-body"></div>'))}
      ${section('replicated-queues', 'Replicated queues', raw(`<div id="replicated-body"></div>
        <p class="help">Behind: how many log entries a member lacks of the longest log among the members.
        A highlighted queue has no live majority or no leader: it refuses publishes until it has.</p>`))}`);
    return {
      async refresh() {
        const queues = (await Api.list('queues', App.vhost)).filter(q => Array.isArray(q.members));
        const all = await statuses(queues);
        const bad = queues.filter(q => !hasMajority(q) || !q.leader);
        setHtml(document.getElementById('cluster-summary-body'), h`<p id="cluster-summary-text">
          ${fmtNum(queues.length)} replicated queues; ${bad.length === 0 ? 'every one has a live majority'
            : h`<b class="status-red">${fmtNum(bad.length)} without a majority or leader</b>`}.</p>`);
        const body = document.getElementById('replicated-body');
        if (queues.length === 0) { setHtml(body, h`<p>... no replicated queues ...</p>`); return; }
        setHtml(body, h`<table class="list" id="replicated-list">
          <tr><th>Virtual host</th><th>Queue</th><th>Type</th><th>Leader</th><th class="r">Term</th>
              <th>Online</th><th>Members</th></tr>
          ${queues.map((q, i) => {
            const status = all[i] || [];
            const longest = Math.max(0, ...status.map(m => Number(m['Last Log Index']) || 0));
            const term = Math.max(0, ...status.map(m => Number(m.Term) || 0));
            const alert = !hasMajority(q) || !q.leader;
            return h`<tr class="${alert ? 'alert' : ''}" data-queue="${q.name}">
              <td>${q.vhost}</td><td><a href="#/queues/${enc(q.vhost)}/${enc(q.name)}">${q.name}</a></td>
              <td>${q.type}</td><td>${q.leader || h`<span class="status-red">none</span>`}</td>
              <td class="r">${term || q.raft_term || ''}</td>
              <td>${(q.online || []).length} of ${q.members.length}${alert ? h` <b class="status-red">no majority</b>` : ''}</td>
              <td>${status.length ? status.map(m => memberCell(q, m, longest)) : membersCell(q)}</td></tr>`;
          })}</table>`);
      },
    };
  },
};
