'use strict';
// The one way the pages reach the broker: /api/* with HTTP basic auth, as RabbitMQ's UI
// calls its API. The credentials live in sessionStorage for the tab's life.

class ApiError extends Error {
  constructor(status, body) {
    const reason = body && typeof body === 'object' && body.reason ? body.reason : `HTTP ${status}`;
    super(typeof reason === 'string' ? reason : JSON.stringify(reason));
    this.status = status;
    this.body = body;
  }
}

const Api = {
  token: sessionStorage.getItem('warrenmq-auth'),
  /** Called when a request is refused for its credentials (the session ended). */
  onUnauthenticated: null,

  setCredentials(user, password) {
    // btoa takes Latin-1: encode UTF-8 first, so any user name works.
    const bytes = new TextEncoder().encode(`${user}:${password}`);
    this.token = btoa(String.fromCharCode(...bytes));
  },
  remember() { sessionStorage.setItem('warrenmq-auth', this.token); },
  forget() { this.token = null; sessionStorage.removeItem('warrenmq-auth'); },

  async request(method, path, body) {
    const headers = { Authorization: `Basic ${this.token}` };
    const init = { method, headers, credentials: 'omit', cache: 'no-store' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const r = await fetch(`api${path}`, init);
    const text = await r.text();
    let data = null;
    if (text) {
      try { data = JSON.parse(text); } catch (e) { data = text; }
    }
    if (!r.ok) {
      const err = new ApiError(r.status, data);
      if (r.status === 401 && r.headers.get('www-authenticate') && this.onUnauthenticated) {
        this.onUnauthenticated(err);
      }
      throw err;
    }
    return data;
  },
  get(path) { return this.request('GET', path); },
  put(path, body) { return this.request('PUT', path, body === undefined ? {} : body); },
  post(path, body) { return this.request('POST', path, body === undefined ? {} : body); },
  del(path, body) { return this.request('DELETE', path, body); },

  /** A list endpoint, scoped to the vhost chosen in the header (if any). */
  list(kind, vhost) {
    return this.get(vhost ? `/${kind}/${enc(vhost)}` : `/${kind}`);
  },
};
