// Host and Origin behind the operator's reverse proxy: the public name of
// publicUrl is answered besides loopback names, and its exact origin is a
// page of the gateway's own; nothing else is.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parsePublicUrl } from '../http/public-url.ts';
import { hostAllowed, originAllowed } from './addressed.ts';

describe('hostAllowed and originAllowed, with publicUrl https://corral.example.com', () => {
  const pub = parsePublicUrl('https://corral.example.com');

  it('take the public Host over loopback (a proxy on this host that passes the Host on), with its default port or in another case, and still refuse any other name', () => {
    for (const host of ['corral.example.com', 'Corral.Example.COM', 'corral.example.com:443', 'localhost:18789', '127.0.0.1:18789']) assert.equal(hostAllowed('127.0.0.1', host, pub), true, host);
    for (const host of ['evil.example', 'corral.example.com:80', 'corral.example.com.', 'xcorral.example.com', undefined]) assert.equal(hostAllowed('127.0.0.1', host, pub), false, String(host));
  });

  it('take a page of the public origin, through the proxy whichever Host it passes on; refuse its http twin and every other origin', () => {
    assert.equal(originAllowed('https://corral.example.com', 'corral.example.com', pub), true);
    assert.equal(originAllowed('https://corral.example.com', '127.0.0.1:18789', pub), true, 'a proxy that sends the upstream address as Host');
    assert.equal(originAllowed('https://corral.example.com:443', 'corral.example.com', pub), true);
    assert.equal(originAllowed('http://127.0.0.1:18789', '127.0.0.1:18789', pub), true, 'the console opened on loopback itself');
    assert.equal(originAllowed('http://corral.example.com', 'corral.example.com', pub), false, 'a plain-http page anyone on the path can serve');
    assert.equal(originAllowed('https://evil.example', 'corral.example.com', pub), false);
    assert.equal(originAllowed('https://corral.example.com.evil.example', 'corral.example.com', pub), false);
    assert.equal(originAllowed('null', 'corral.example.com', pub), false);
  });

  it('without publicUrl, refuse the public name over loopback and its origin on a loopback Host, as before', () => {
    assert.equal(hostAllowed('127.0.0.1', 'corral.example.com'), false);
    assert.equal(originAllowed('https://corral.example.com', '127.0.0.1:18789'), false);
  });
});

describe('parsePublicUrl', () => {
  it('keeps the origin and the Host values that name it; a port other than the default is part of both', () => {
    assert.deepEqual(parsePublicUrl('https://Corral.Example.com/'), { origin: 'https://corral.example.com', hosts: ['corral.example.com', 'corral.example.com:443'], secure: true });
    assert.deepEqual(parsePublicUrl('https://corral.example.com:8443'), { origin: 'https://corral.example.com:8443', hosts: ['corral.example.com:8443'], secure: true });
    assert.deepEqual(parsePublicUrl('http://127.0.0.1:8080'), { origin: 'http://127.0.0.1:8080', hosts: ['127.0.0.1:8080'], secure: false });
    assert.equal(parsePublicUrl('http://[::1]:8080').secure, false);
  });
});
