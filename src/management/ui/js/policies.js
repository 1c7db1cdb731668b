'use strict';
// Admin > Policies: the list and RabbitMQ's "Add / update a policy" form, whose
// definition is key/value rows with a type each (so `ha-mode` = `all` is typed in, or
// filled by the hint links, as in RabbitMQ's form); a policy can be deleted.

/** Definition keys offered as hints: [key, label, default value, type]. */
const POLICY_HINTS = [
  ['ha-mode', 'HA mode', 'all', 'String'],
  ['ha-params', 'HA params', '2', 'Number'],
  ['ha-sync-mode', 'HA sync mode', 'automatic', 'String'],
  ['message-ttl', 'Message TTL', '', 'Number'],
  ['expires', 'Auto expire', '', 'Number'],
  ['max-length', 'Max length', '', 'Number'],
  ['max-length-bytes', 'Max length bytes', '', 'Number'],
  ['overflow', 'Overflow behaviour', 'reject-publish', 'String'],
  ['dead-letter-exchange', 'Dead letter exchange', '', 'String'],
  ['dead-letter-routing-key', 'Dead letter routing key', '', 'String'],
  ['queue-leader-locator', 'Leader locator', 'balanced', 'String'],
  ['delivery-limit', 'Delivery limit', '', 'Number'],
];

Pages.policies = {
  tab: 'admin',
  mount(main) {
    setHtml(main, h`${adminMenu('policies')}<h1>Policies</h1>
      ${section('user-policies', 'User policies', raw('<div id="policies-table"></div>'))}
      ${section('add-policy', 'Add / update a policy', raw(`<form id="policy-form"><table class="form">
        <tr><th>Virtual host:</th><td><select name="vhost"></select></td></tr>
        <tr><th>Name:</th><td><input type="text" name="name" required><span class="mand">*</span></td></tr>
        <tr><th>Pattern:</th><td><input type="text" name="pattern" required><span class="mand">*</span></td></tr>
        <tr><th>Apply to:</th><td><select name="apply-to"><option value="all">Exchanges and queues</option>
          <option value="exchanges">Exchanges</option><option value="queues">Queues</option></select></td></tr>
        <tr><th>Priority:</th><td><input type="text" name="priority"></td></tr>
        <tr><th>Definition:</th><td><div id="policy-definition"></div><span class="mand">*</span>
          <div class="hints help" id="policy-hints">${POLICY_HINTS.map(([k, label, v, t]) =>
            `<span data-key="${esc(k)}" data-value="${esc(v)}" data-type="${t}" title="${esc(k)}">${esc(label)}</span>`).join('')}</div></td></tr>
        <tr><th></th><td><input type="submit" id="policy-submit" value="Add / update policy"></td></tr>
        </table></form>`))}`);
    const form = document.getElementById('policy-form');
    const definition = document.getElementById('policy-definition');
    KeyValue.attach(definition, 'definition');
    document.getElementById('policy-hints').addEventListener('click', ev => {
      const d = ev.target.dataset;
      if (d.key) KeyValue.put(definition, d.key, d.value, d.type);
    });
    Api.get('/vhosts').then(v => setHtml(form.elements.vhost, vhostOptions(v)));
    form.addEventListener('submit', ev => {
      ev.preventDefault();
      App.act('Add policy', () => {
        const def = KeyValue.read(definition);
        if (Object.keys(def).length === 0) throw new Error('the definition is empty');
        const priority = field(form, 'priority');
        const body = {
          pattern: field(form, 'pattern'),
          definition: def,
          priority: priority === '' ? 0 : Number(priority),
          'apply-to': field(form, 'apply-to'),
        };
        return Api.put(`/policies/${objPath(field(form, 'vhost'), field(form, 'name'))}`, body);
      }).then(ok => {
        if (ok) { form.elements.name.value = ''; form.elements.pattern.value = ''; KeyValue.attach(definition, 'definition'); }
      });
    });
    const el = document.getElementById('policies-table');
    el.addEventListener('click', ev => {
      const d = ev.target.dataset;
      if (d.deletePolicy && confirm(`Delete policy ${d.deletePolicy}?`)) {
        App.act('Delete policy', () => Api.del(`/policies/${objPath(d.vhost, d.deletePolicy)}`));
      }
    });
    return {
      async refresh() {
        const rows = await Api.list('policies', App.vhost);
        if (rows.length === 0) { setHtml(el, h`<p>... no policies ...</p>`); return; }
        setHtml(el, h`<table class="list" id="policies-list">
          <tr><th>Virtual Host</th><th>Name</th><th>Pattern</th><th>Apply to</th><th>Definition</th>
              <th class="r">Priority</th><th></th></tr>
          ${rows.map(p => h`<tr data-policy="${p.name}"><td>${p.vhost}</td><td>${p.name}</td><td>${p.pattern}</td>
            <td>${p['apply-to']}</td><td>${Object.entries(p.definition).map(([k, v]) =>
              h`<div>${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}</div>`)}</td>
            <td class="r">${p.priority}</td>
            <td><button type="button" data-vhost="${p.vhost}" data-delete-policy="${p.name}">Delete</button></td></tr>`)}
          </table>`);
      },
    };
  },
};
