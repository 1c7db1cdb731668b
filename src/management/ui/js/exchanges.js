'use strict';
// Exchanges: the list (type, features, message rates when reported) and RabbitMQ's
// "Add a new exchange" form; an exchange that is not built in can be deleted.

function features(o) {
  const f = [];
  if (o.durable) f.push('D');
  if (o.auto_delete) f.push('AD');
  if (o.internal) f.push('I');
  if (o.exclusive) f.push('Excl');
  if (o.arguments && Object.keys(o.arguments).length) f.push('Args');
  return f.map(x => h`<span class="tag" title="${fmtJson(o.arguments)}">${x}</span>`);
}

/** Option elements for the vhosts, the header's choice selected. */
function vhostOptions(vhosts) {
  return vhosts.map(v => h`<option value="${v.name}"${raw(v.name === (App.vhost || '/') ? ' selected' : '')}>${v.name}</option>`);
}

Pages.exchanges = {
  tab: 'exchanges',
  mount(main) {
    setHtml(main, h`<h1>Exchanges</h1>
      ${section('all-exchanges', 'All exchanges', raw('<div id="exchanges-table"></div>'))}
      ${section('add-exchange', 'Add a new exchange', raw(`<form id="add-exchange-form"><table class="form">
        <tr><th>Virtual host:</th><td><select name="vhost"></select></td></tr>
        <tr><th>Name:</th><td><input type="text" name="name" required><span class="mand">*</span></td></tr>
        <tr><th>Type:</th><td><select name="type"><option>direct</option><option>fanout</option>
            <option>headers</option><option>topic</option></select></td></tr>
        <tr><th>Durability:</th><td><select name="durable"><option value="true">Durable</option>
            <option value="false">Transient</option></select></td></tr>
        <tr><th>Auto delete:</th><td><select name="auto_delete"><option value="false">No</option>
            <option value="true">Yes</option></select></td></tr>
        <tr><th>Internal:</th><td><select name="internal"><option value="false">No</option>
            <option value="true">Yes</option></select></td></tr>
        <tr><th></th><td><input type="submit" value="Add exchange"></td></tr></table></form>`), true)}`);
    const form = document.getElementById('add-exchange-form');
    Api.get('/vhosts').then(v => setHtml(form.elements.vhost, vhostOptions(v)));
    form.addEventListener('submit', ev => {
      ev.preventDefault();
      const body = {
        type: field(form, 'type'),
        durable: field(form, 'durable') === 'true',
        auto_delete: field(form, 'auto_delete') === 'true',
        internal: field(form, 'internal') === 'true',
        arguments: {},
      };
      App.act('Add exchange', () => Api.put(`/exchanges/${objPath(field(form, 'vhost'), field(form, 'name'))}`, body))
        .then(ok => { if (ok) form.elements.name.value = ''; });
    });
    const el = document.getElementById('exchanges-table');
    el.addEventListener('click', ev => {
      const b = ev.target.dataset;
      if (b.deleteName && confirm(`Delete exchange ${b.deleteName}?`)) {
        App.act('Delete exchange', () => Api.del(`/exchanges/${objPath(b.deleteVhost, b.deleteName)}`));
      }
    });
    return {
      async refresh() {
        const rows = await Api.list('exchanges', App.vhost);
        setHtml(el, h`<table class="list" id="exchanges-list">
          <tr><th>Virtual host</th><th>Name</th><th>Type</th><th>Features</th>
              <th class="r">Message rate in</th><th class="r">Message rate out</th><th></th></tr>
          ${rows.map(x => {
            const builtIn = x.name === '' || x.name.startsWith('amq.');
            return h`<tr><td>${x.vhost}</td><td>${x.name === '' ? '(AMQP default)' : x.name}</td>
            <td>${x.type}</td><td>${features(x)}</td>
            <td class="r">${fmtRate(x.message_stats, 'publish_in')}</td>
            <td class="r">${fmtRate(x.message_stats, 'publish_out')}</td>
            <td>${builtIn ? '' : h`<button type="button" data-delete-vhost="${x.vhost}" data-delete-name="${x.name}">Delete</button>`}</td></tr>`;
          })}</table>`);
      },
    };
  },
};
