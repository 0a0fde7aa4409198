// Services for the embedded DNS: the services module's view of the tables (agent/services.ts)
// as ServiceNames, plugged in with one call (AgentDns.useServices). A service name answers its
// VIP (vip) or its tasks (dnsrr), `tasks.NAME` its tasks; a drained task (weight 0) takes no new
// connections, so for DNS, the load balancer of dnsrr, it is left out as well.
import type { ServiceName, ServiceNames, TableView } from './dns-records.js';
import type { Services } from './services.js';
import { ENDPOINTS, SERVICES, TASK_WEIGHTS } from './tables.js';

export function serviceNames(services: Pick<Services, 'all' | 'tasks'>, tables: Pick<TableView, 'subscribe'>): ServiceNames {
  return {
    services(): ServiceName[] {
      const tasks = services.tasks().filter((t) => t.weight > 0);
      return services.all().map(([id, s]) => ({
        network: s.network, name: s.name, mode: s.mode, ...(s.vip ? { vip: s.vip } : {}),
        tasks: tasks.filter((t) => t.ep.service === id && t.ep.network === s.network).map((t) => ({ name: t.ep.name, ip: t.ep.ip })),
        ports: s.ports.map((p) => ({ target: p.target, protocol: p.protocol })),
      }));
    },
    onChange(cb) {
      const subs = [SERVICES, ENDPOINTS, TASK_WEIGHTS].map((t) => tables.subscribe(() => cb(), t));
      return () => subs.forEach((u) => u());
    },
  };
}
