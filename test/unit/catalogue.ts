import t from 'tap';
import { CATALOGUE, DEFAULT_CHECKS, catalogueOrder, defaultPorts, didYouMean, parseCheckList } from '../../src/checks/catalogue.js';
import { CHECK_IDS } from '../../src/types.js';

t.test('defaults match DESIGN §1', async (t) => {
  t.same(DEFAULT_CHECKS, ['bgp', 'ipip', 'vxlan', 'wireguard', 'typha', 'etcd', 'apiserver', 'mtu']);
  const row = (id: keyof typeof CATALOGUE) => {
    const d = CATALOGUE[id];
    return [d.transport, d.defaultPort, d.reach.kind === 'to-role' ? d.reach.role : 'all'];
  };
  t.same(row('bgp'), ['tcp', 179, 'all']);
  t.same(row('ipip'), ['ipip', null, 'all']);
  t.same(row('vxlan'), ['udp', 4789, 'all']);
  t.same(row('wireguard'), ['udp', 51820, 'all']);
  t.same(row('typha'), ['tcp', 5473, 'typha']);
  t.same(row('etcd'), ['tcp', 2379, 'etcd']);
  t.same(row('apiserver'), ['tcp', 6443, 'apiserver']);
  t.same(row('mtu'), ['ipip', null, 'all'], 'framed as IP-in-IP unless the plan says otherwise');
  for (const id of CHECK_IDS) {
    t.equal(CATALOGUE[id].id, id);
    t.ok(CATALOGUE[id].why.length > 10, `${id} says why`);
    t.notMatch(CATALOGUE[id].why, /\n/);
  }
  t.same(defaultPorts(), { bgp: 179, ipip: null, vxlan: 4789, wireguard: 51820, typha: 5473, etcd: 2379, apiserver: 6443, mtu: null });
});

t.test('traffic and rule hints', async (t) => {
  t.equal(CATALOGUE.bgp.traffic(179), 'BGP (TCP 179)');
  t.equal(CATALOGUE.bgp.traffic(1179), 'BGP (TCP 1179)');
  t.equal(CATALOGUE.ipip.traffic(null), 'IP-in-IP (IP protocol 4)');
  t.equal(CATALOGUE.vxlan.traffic(4789), 'VXLAN (UDP 4789)');
  t.equal(CATALOGUE.vxlan.traffic(null), 'VXLAN (UDP 4789)', 'falls back to the default port');
  t.equal(CATALOGUE.bgp.ruleHint(179), '-p tcp --dport 179');
  t.equal(CATALOGUE.ipip.ruleHint(null), '-p 4');
  t.equal(CATALOGUE.vxlan.ruleHint(8472), '-p udp --dport 8472');
  t.equal(CATALOGUE.wireguard.ruleHint(51820), '-p udp --dport 51820');
});

t.test('parseCheckList', async (t) => {
  t.same(parseCheckList('bgp'), ['bgp']);
  t.same(parseCheckList(' bgp , ipip,vxlan '), ['bgp', 'ipip', 'vxlan']);
  t.same(parseCheckList('vxlan,bgp,vxlan'), ['vxlan', 'bgp'], 'dedupes, keeps first-seen order');
  t.same(parseCheckList('BGP,'), ['bgp'], 'case-insensitive, empty items ignored');
  t.same(parseCheckList('all'), [...CHECK_IDS]);
  t.throws(() => parseCheckList(''), /no checks given/);
  t.throws(() => parseCheckList(' , '), /no checks given/);
  t.throws(() => parseCheckList('bgp,vxaln'), /unknown check 'vxaln' \(did you mean 'vxlan'\?\); valid checks: bgp, ipip, vxlan, wireguard, typha, etcd, apiserver/);
  t.throws(() => parseCheckList('wirguard'), /did you mean 'wireguard'/);
  t.throws(() => parseCheckList('ipp'), /did you mean 'ipip'/);
  const err = (() => {
    try {
      parseCheckList('flannel');
    } catch (e) {
      return (e as Error).message;
    }
    return '';
  })();
  t.match(err, /unknown check 'flannel'; valid checks/);
  t.notMatch(err, /did you mean/, 'no guess for a far-off word');
});

t.test('didYouMean and catalogueOrder', async (t) => {
  t.equal(didYouMean('adress', ['name', 'address', 'roles']), 'address');
  t.equal(didYouMean('rols', ['name', 'address', 'roles']), 'roles');
  t.equal(didYouMean('nmae', ['name', 'address']), 'name', 'transposition is one edit');
  t.equal(didYouMean('zzzzzz', ['name', 'address']), null);
  t.equal(didYouMean('', ['a']), null);
  t.same(catalogueOrder(['apiserver', 'bgp', 'bgp', 'vxlan']), ['bgp', 'vxlan', 'apiserver']);
});
