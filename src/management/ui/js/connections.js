'use strict';
// Connections and Channels: the cluster's AMQP connections and their channels, with
// message and byte rates when the node reports them, and closing a connection as
// RabbitMQ's connection page does (DELETE /api/connections/NAME).

function listPath(kind) {
  return App.vhost ? `/vhosts/${enc(App.vhost)}/${kind}` : `/${kind}`;
}

Pages.connections = {
  tab: 'connections',
  mount(main) {
    setHtml(main, h`<h1>Connections</h1>
      ${section('all-connections', 'All connections', raw('<div id="connections-table"></div>'))}`);
    const el = document.getElementById('connections-table');
    el.addEventListener('click', ev => {
      const name = ev.target.dataset.close;
      if (name && confirm(`Close connection ${name}?`)) {
        App.act('Close connection', () => Api.request('DELETE', `/connections/${enc(name)}`));
      }
    });
    return {
      async refresh() {
        const rows = await Api.get(listPath('connections'));
        if (rows.length === 0) { setHtml(el, h`<p>... no connections ...</p>`); return; }
        setHtml(el, h`<table class="list" id="connections-list">
          <tr><th>Virtual host</th><th>Name</th><th>Node</th><th>User name</th><th>State</th>
              <th>Protocol</th><th>Client</th><th class="r">Channels</th>
              <th class="r">From client</th><th class="r">To client</th><th></th></tr>
          ${rows.map(c => h`<tr>
            <td>${c.vhost}</td><td>${c.name}</td><td>${c.node}</td><td>${c.user}</td>
            <td>${c.state}</td><td>${c.protocol}</td>
            <td>${(c.client_properties || {}).product || ''}</td>
            <td class="r">${fmtNum(c.channels)}</td>
            <td class="r">${fmtRate(c, 'recv_oct')}</td><td class="r">${fmtRate(c, 'send_oct')}</td>
            <td><button type="button" data-close="${c.name}">Close</button></td></tr>`)}
          </table>`);
      },
    };
  },
};

Pages.channels = {
  tab: 'channels',
  mount(main) {
    setHtml(main, h`<h1>Channels</h1>
      ${section('all-channels', 'All channels', raw('<div id="channels-table"></div>'))}`);
    const el = document.getElementById('channels-table');
    return {
      async refresh() {
        const rows = await Api.get(listPath('channels'));
        if (rows.length === 0) { setHtml(el, h`<p>... no channels ...</p>`); return; }
        setHtml(el, h`<table class="list" id="channels-list">
          <tr><th>Channel</th><th>Virtual host</th><th>Node</th><th>User name</th><th>Mode</th>
              <th>State</th><th class="r">Consumers</th><th class="r">Prefetch</th>
              <th class="r">Unacked</th><th class="r">Publish</th><th class="r">Deliver / get</th>
              <th class="r">Ack</th></tr>
          ${rows.map(c => {
            const s = c.message_stats || {};
            return h`<tr>
            <td>${c.name}</td><td>${c.vhost}</td><td>${c.node}</td><td>${c.user}</td>
            <td>${c.confirm ? 'C' : ''}${c.transactional ? 'T' : ''}</td><td>${c.state}</td>
            <td class="r">${fmtNum(c.consumer_count)}</td><td class="r">${fmtNum(c.prefetch_count)}</td>
            <td class="r">${fmtNum(c.messages_unacknowledged)}</td>
            <td class="r">${fmtRate(s, 'publish')}</td><td class="r">${fmtRate(s, 'deliver_get')}</td>
            <td class="r">${fmtRate(s, 'ack')}</td></tr>`;
          })}</table>`);
      },
    };
  },
};
