// Topologies the integration tests share, as text.

/** Two homes (alice, bob) behind NATs of the given kinds (YAML flow maps), a public rendezvous host. */
export const twoHomesText = (name: string, nat1: string, nat2: string) => `
name: ${name}
nodes:
  internet: { kind: router }
  rdv: {}
  nat1: { kind: nat, nat: ${nat1} }
  nat2: { kind: nat, nat: ${nat2} }
  alice: {}
  bob: {}
links:
  - { endpoints: [alice:eth0, nat1:lan], subnet: 192.168.1.0/24 }
  - { endpoints: [bob:eth0, nat2:lan], subnet: 192.168.1.0/24 }
  - { endpoints: [nat1:wan, internet:e1], subnet: 198.51.100.0/30 }
  - { endpoints: [nat2:wan, internet:e2], subnet: 198.51.100.4/30 }
  - { endpoints: [rdv:eth0, internet:e3], subnet: 203.0.113.0/24 }
`;
