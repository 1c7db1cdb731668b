'use strict';
// Admin: users (tags, permissions; add a user, set permissions, delete), virtual hosts
// (add, delete), limits (vhost and user limits) and cluster (its name and nodes), each
// a sub-page under the Admin tab as RabbitMQ's; policies are in policies.js.

const ADMIN_SUBPAGES = [['users', 'Users'], ['vhosts', 'Virtual Hosts'], ['policies', 'Policies'],
  ['limits', 'Limits'], ['admin-cluster', 'Cluster']];

/** The Admin tab's sub-menu, the current sub-page marked. */
function adminMenu(current) {
  const links = ADMIN_SUBPAGES.map(([p, label]) =>
    String(h`<a href="#/${p}"${raw(p === current ? ' class="selected"' : '')}>${label}</a>`));
  return h`<nav class="admin-menu" id="admin-menu">${raw(links.join(' | '))}</nav>`;
}

Pages.users = {
  tab: 'admin',
  mount(main) {
    setHtml(main, h`${adminMenu('users')}<h1>Users</h1>
      ${section('all-users', 'All users', raw('<div id="users-table"></div>'))}
      ${section('add-user', 'Add a user', raw(`<form id="add-user-form"><table class="form">
        <tr><th>Username:</th><td><input type="text" name="username" required><span class="mand">*</span></td></tr>
        <tr><th>Password:</th><td><input type="password" name="password" required><span class="mand">*</span></td></tr>
        <tr><th>Tags:</th><td><input type="text" name="tags" id="add-user-tags">
          <div class="hints help">Set: <span>administrator</span><span>monitoring</span><span>policymaker</span>
          <span>management</span><span>impersonator</span><span>none</span></div></td></tr>
        <tr><th></th><td><input type="submit" value="Add user"></td></tr></table></form>`), true)}
      ${section('set-permission', 'Set permission', raw(`<form id="permission-form"><table class="form">
        <tr><th>User:</th><td><select name="user"></select></td></tr>
        <tr><th>Virtual host:</th><td><select name="vhost"></select></td></tr>
        <tr><th>Configure regexp:</th><td><input type="text" name="configure" value=".*"></td></tr>
        <tr><th>Write regexp:</th><td><input type="text" name="write" value=".*"></td></tr>
        <tr><th>Read regexp:</th><td><input type="text" name="read" value=".*"></td></tr>
        <tr><th></th><td><input type="submit" value="Set permission"></td></tr></table></form>`), true)}`);
    const add = document.getElementById('add-user-form');
    add.querySelector('.hints').addEventListener('click', ev => {
      const tag = ev.target.tagName === 'SPAN' ? ev.target.textContent : null;
      if (tag) add.elements.tags.value = tag === 'none' ? '' : tag;
    });
    add.addEventListener('submit', ev => {
      ev.preventDefault();
      const tags = field(add, 'tags').split(',').map(t => t.trim()).filter(t => t);
      App.act('Add user', () => Api.put(`/users/${enc(field(add, 'username'))}`,
        { password: add.elements.password.value, tags: tags.join(',') }))
        .then(ok => { if (ok) add.reset(); });
    });
    const perm = document.getElementById('permission-form');
    Api.get('/vhosts').then(v => setHtml(perm.elements.vhost, vhostOptions(v)));
    perm.addEventListener('submit', ev => {
      ev.preventDefault();
      App.act('Set permission', () => Api.put(`/permissions/${enc(field(perm, 'vhost'))}/${enc(field(perm, 'user'))}`,
        { configure: field(perm, 'configure'), write: field(perm, 'write'), read: field(perm, 'read') }));
    });
    const el = document.getElementById('users-table');
    el.addEventListener('click', ev => {
      const d = ev.target.dataset;
      if (d.deleteUser && confirm(`Delete user ${d.deleteUser}?`)) {
        App.act('Delete user', () => Api.del(`/users/${enc(d.deleteUser)}`));
      }
      if (d.clearVhost) {
        App.act('Clear permission', () => Api.del(`/permissions/${enc(d.clearVhost)}/${enc(d.clearUser)}`));
      }
    });
    return {
      async refresh() {
        const [users, perms] = await Promise.all([Api.get('/users'), Api.get('/permissions')]);
        const select = perm.elements.user;
        const chosen = select.value;
        setHtml(select, users.map(u => h`<option${raw(u.name === chosen ? ' selected' : '')}>${u.name}</option>`));
        setHtml(el, h`<table class="list" id="users-list">
          <tr><th>Name</th><th>Tags</th><th>Can access virtual hosts</th><th>Has password</th><th></th></tr>
          ${users.map(u => {
            const tags = Array.isArray(u.tags) ? u.tags : String(u.tags || '').split(',').filter(t => t);
            const mine = perms.filter(p => p.user === u.name);
            return h`<tr data-user="${u.name}"><td>${u.name}</td><td>${tags.join(', ')}</td>
              <td>${mine.length === 0 ? h`<span class="muted">No access</span>` : mine.map(p =>
                h`<div>${p.vhost} <span class="muted">(${p.configure} / ${p.write} / ${p.read})</span>
                  <button type="button" data-clear-vhost="${p.vhost}" data-clear-user="${u.name}">Clear</button></div>`)}</td>
              <td>${fmtBool(u.password_hash !== '')}</td>
              <td><button type="button" data-delete-user="${u.name}">Delete</button></td></tr>`;
          })}</table>`);
      },
    };
  },
};
Pages.admin = Pages.users;

Pages.vhosts = {
  tab: 'admin',
  mount(main) {
    setHtml(main, h`${adminMenu('vhosts')}<h1>Virtual Hosts</h1>
      ${section('all-vhosts', 'All virtual hosts', raw('<div id="vhosts-table"></div>'))}
      ${section('add-vhost', 'Add a new virtual host', raw(`<form id="add-vhost-form"><table class="form">
        <tr><th>Name:</th><td><input type="text" name="name" required><span class="mand">*</span></td></tr>
        <tr><th>Description:</th><td><input type="text" name="description"></td></tr>
        <tr><th></th><td><input type="submit" value="Add virtual host"></td></tr></table></form>`), true)}`);
    const add = document.getElementById('add-vhost-form');
    add.addEventListener('submit', ev => {
      ev.preventDefault();
      App.act('Add virtual host', () => Api.put(`/vhosts/${enc(field(add, 'name'))}`,
        { description: field(add, 'description') }))
        .then(ok => { if (ok) { add.reset(); App.loadVhosts(); } });
    });
    const el = document.getElementById('vhosts-table');
    el.addEventListener('click', ev => {
      const v = ev.target.dataset.deleteVhost;
      if (v && confirm(`Delete virtual host ${v} and everything in it?`)) {
        App.act('Delete virtual host', () => Api.del(`/vhosts/${enc(v)}`)).then(() => App.loadVhosts());
      }
    });
    return {
      async refresh() {
        const vhosts = await Api.get('/vhosts');
        setHtml(el, h`<table class="list" id="vhosts-list">
          <tr><th>Name</th><th>Description</th><th>Tags</th><th class="r">Messages</th><th></th></tr>
          ${vhosts.map(v => h`<tr><td>${v.name}</td><td>${v.description || ''}</td>
            <td>${Array.isArray(v.tags) ? v.tags.join(', ') : (v.tags || '')}</td>
            <td class="r">${v.messages === undefined ? '' : fmtNum(v.messages)}</td>
            <td><button type="button" data-delete-vhost="${v.name}">Delete</button></td></tr>`)}</table>`);
      },
    };
  },
};

Pages.limits = {
  tab: 'admin',
  mount(main) {
    setHtml(main, h`${adminMenu('limits')}<h1>Limits</h1>
      ${section('vhost-limits', 'Virtual host limits', raw('<div id="vhost-limits-table"></div>'))}
      ${section('user-limits', 'User limits', raw('<div id="user-limits-table"></div>'))}
      <p class="help">Limits are set with warrenctl (set_vhost_limits, set_user_limits).</p>`);
    const table = (rows, who) => (rows.length === 0 ? h`<p>... no limits ...</p>` : h`<table class="list">
      <tr><th>${who}</th><th>Limits</th></tr>${rows.map(r => h`<tr><td>${r.vhost || r.user}</td>
      <td>${fmtJson(r.value)}</td></tr>`)}</table>`);
    return {
      async refresh() {
        const [v, u] = await Promise.all([Api.get('/vhost-limits'), Api.get('/user-limits')]);
        setHtml(document.getElementById('vhost-limits-table'), table(v, 'Virtual host'));
        setHtml(document.getElementById('user-limits-table'), table(u, 'User'));
      },
    };
  },
};

Pages['admin-cluster'] = {
  tab: 'admin',
  mount(main) {
    setHtml(main, h`${adminMenu('admin-cluster')}<h1>Cluster</h1>
      ${section('cluster-name-box', 'Cluster name', raw('<div id="cluster-name-body"></div>'))}
      <p class="help">Nodes join and leave with warrenctl (join_cluster, forget_cluster_node).
      The Cluster tab shows every replicated queue's Raft members.</p>`);
    return {
      async refresh() {
        const n = await Api.get('/cluster-name');
        setHtml(document.getElementById('cluster-name-body'), h`<p>The cluster is called <b>${n.name}</b>.</p>`);
      },
    };
  },
};
