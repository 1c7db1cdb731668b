'use strict';
// The app shell: login and logout, the header (versions, cluster, user, the vhost and
// refresh selects), the tabs, hash routing to the pages (Pages.NAME, each in its own
// file), the refresh timer (5 s by default, adjustable, as RabbitMQ's) and the popup.
//
// A page is { tab, mount(main, params) -> view }: mount draws the page once (forms
// included) and the view's refresh() redraws only its data, so a refresh never wipes
// what someone is typing. view.destroy(), if any, runs when the page is left.

const App = {
  user: null,
  overview: null,
  vhost: sessionStorage.getItem('warrenmq-vhost') || '',
  view: null,
  timer: null,

  /** The route of location.hash: a page name and its params. */
  route() {
    const parts = location.hash.replace(/^#\/?/, '').split('/').filter(p => p !== '')
      .map(decodeURIComponent);
    if (parts.length === 0) return { page: 'overview', params: [] };
    if (parts[0] === 'queues' && parts.length === 3) return { page: 'queue', params: parts.slice(1) };
    if (Pages[parts[0]]) return { page: parts[0], params: parts.slice(1) };
    return { page: 'overview', params: [] };
  },

  warn(message) { this.popup(message, 'warn'); },
  info(message) { this.popup(message, 'info'); },
  popup(message, kind) {
    const box = document.getElementById('popup');
    box.className = kind;
    document.getElementById('popup-text').textContent = message;
    box.hidden = false;
  },

  /** Run an action of a form or button: a refusal becomes a popup; true when it worked. */
  async act(what, fn) {
    try {
      await fn();
      document.getElementById('popup').hidden = true;
      await this.refresh();
      return true;
    } catch (e) {
      this.warn(`${what}: ${e.message}`);
      return false;
    }
  },

  async login(user, password) {
    Api.setCredentials(user, password);
    const status = document.getElementById('login-status');
    try {
      this.user = await Api.get('/whoami');
    } catch (e) {
      Api.forget();
      // RabbitMQ's UI: "Login failed", and the API's reason when the user is known but
      // refused (a user without a management tag: "Not management user").
      const reason = e.body && e.body.error === 'not_authorised' ? h`<p id="login-reason">${e.message}</p>` : '';
      setHtml(status, h`<p>Login failed</p>${reason}`);
      return;
    }
    Api.remember();
    setHtml(status, '');
    await this.showLayout();
  },

  logout() {
    Api.forget();
    this.user = null;
    this.leave();
    clearTimeout(this.timer);
    document.getElementById('layout').hidden = true;
    document.getElementById('login').hidden = false;
    document.getElementById('login-password').value = '';
  },

  async showLayout() {
    document.getElementById('login').hidden = true;
    document.getElementById('layout').hidden = false;
    document.getElementById('user-name').textContent = this.user.name;
    try {
      this.overview = await Api.get('/overview');
      document.getElementById('cluster-name').textContent = this.overview.cluster_name;
      setHtml(document.getElementById('versions'),
        h`${this.overview.product_name} ${this.overview.product_version}
          (RabbitMQ ${this.overview.rabbitmq_version} API) on <b>${this.overview.node}</b>`);
    } catch (e) {
      this.warn(`overview: ${e.message}`);
    }
    await this.loadVhosts();
    await this.navigate();
  },

  async loadVhosts() {
    const select = document.getElementById('vhost-select');
    try {
      const vhosts = await Api.get('/vhosts');
      const names = vhosts.map(v => v.name);
      if (this.vhost && !names.includes(this.vhost)) this.vhost = '';
      setHtml(select, h`<option value="">All</option>${names.map(n =>
        h`<option value="${n}"${raw(n === this.vhost ? ' selected' : '')}>${n}</option>`)}`);
    } catch (e) {
      this.warn(`vhosts: ${e.message}`);
    }
  },

  leave() {
    if (this.view && this.view.destroy) this.view.destroy();
    this.view = null;
  },

  async navigate() {
    if (!this.user) return;
    const { page, params } = this.route();
    const spec = Pages[page];
    this.leave();
    document.querySelectorAll('#tabs a').forEach(a => {
      a.classList.toggle('selected', a.dataset.tab === spec.tab);
    });
    const main = document.getElementById('main');
    main.innerHTML = '';
    main.dataset.page = page;
    this.view = spec.mount(main, params);
    await this.refresh();
  },

  /** Redraw the current page's data and schedule the next refresh. */
  async refresh() {
    clearTimeout(this.timer);
    const view = this.view;
    if (view) {
      try {
        await view.refresh();
        document.getElementById('refreshed').textContent = new Date().toLocaleTimeString();
      } catch (e) {
        if (view === this.view && e.status !== 401) this.warn(e.message);
      }
    }
    // Refreshes may overlap (a form's action during a timed one): one timer at most.
    clearTimeout(this.timer);
    const every = Number(document.getElementById('update-every').value);
    if (every > 0 && this.user) this.timer = setTimeout(() => this.refresh(), every);
  },

  async start() {
    Api.onUnauthenticated = () => {
      this.logout();
      setHtml(document.getElementById('login-status'), h`<p>Login failed</p>`);
    };
    document.getElementById('login-form').addEventListener('submit', ev => {
      ev.preventDefault();
      this.login(field(ev.target, 'username'), ev.target.elements.password.value);
    });
    document.getElementById('logout').addEventListener('click', () => this.logout());
    document.getElementById('popup-close').addEventListener('click', () => {
      document.getElementById('popup').hidden = true;
    });
    const every = document.getElementById('update-every');
    every.value = sessionStorage.getItem('warrenmq-refresh') || '5000';
    every.addEventListener('change', () => {
      sessionStorage.setItem('warrenmq-refresh', every.value);
      this.refresh();
    });
    document.getElementById('refresh-now').addEventListener('click', () => this.refresh());
    document.getElementById('vhost-select').addEventListener('change', ev => {
      this.vhost = ev.target.value;
      sessionStorage.setItem('warrenmq-vhost', this.vhost);
      this.navigate();
    });
    window.addEventListener('hashchange', () => this.navigate());
    if (Api.token) {
      try {
        this.user = await Api.get('/whoami');
        await this.showLayout();
        return;
      } catch (e) {
        Api.forget();
      }
    }
    document.getElementById('login').hidden = false;
  },
};

App.start();
