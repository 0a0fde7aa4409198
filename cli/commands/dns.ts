// `tapmesh dns query`: ask a container's embedded resolver, printed like a short dig.
import { request, type Ctx } from '../client.js';
import { FORMAT_OPTION, outputFormat } from '../format.js';
import { command } from '../table.js';

type Rr = { Name: string; TTL: number; Type: string; Data: string };
type Reply = {
  Container: string; Networks: string[]; Transport: string; Status: string; Flags: string[];
  Question: { Name: string; Type: string }; Answers: Rr[]; Additionals: Rr[]; Bytes: number; Ms: number;
};

/** dig's layout: header, flags, question, answer and additional sections, then the footer. */
export function digText(r: Reply): string {
  const rr = (x: Rr) => `${x.Name}.\t${x.TTL}\tIN\t${x.Type}\t${x.Data}${x.Type === 'PTR' || x.Type === 'SRV' ? '.' : ''}`;
  const lines = [
    `;; ->>HEADER<<- opcode: QUERY, status: ${r.Status}`,
    `;; flags: ${r.Flags.join(' ')}; QUERY: 1, ANSWER: ${r.Answers.length}, ADDITIONAL: ${r.Additionals.length}`,
    '',
    ';; QUESTION SECTION:',
    `;${r.Question.Name}.\t\tIN\t${r.Question.Type}`,
  ];
  if (r.Answers.length) lines.push('', ';; ANSWER SECTION:', ...r.Answers.map(rr));
  if (r.Additionals.length) lines.push('', ';; ADDITIONAL SECTION:', ...r.Additionals.map(rr));
  lines.push('', `;; Query time: ${r.Ms.toFixed(1)} msec`, `;; SERVER: 127.0.0.11#53 of ${r.Container} (${r.Transport.toUpperCase()}; networks: ${r.Networks.join(', ') || 'none'})`, `;; MSG SIZE  rcvd: ${r.Bytes}`, '');
  return lines.join('\n');
}

const query = command({
  name: 'dns query', usage: 'NAME [TYPE]', summary: "Ask a container's embedded DNS (127.0.0.11), like dig",
  options: {
    container: { type: 'string', short: 'c', value: 'CONTAINER', help: 'Container whose resolver (and network scope) answers (default: every network of this host)' },
    tcp: { type: 'boolean', help: 'As a TCP client (full answers, never truncated)' },
    format: FORMAT_OPTION,
  },
  notes: 'TYPE: A (default), AAAA, PTR, SRV, TXT, MX, ANY... The answer is the one the container would get; forwarded names go upstream.',
  async run(ctx: Ctx, o, [name, type]) {
    const r = (await request(ctx.socket, 'POST', '/v1/dns/query', { container: o.container, name, type: type ?? 'A', tcp: o.tcp })) as Reply;
    ctx.out(outputFormat(o.format) === 'json' ? `${JSON.stringify(r)}\n` : digText(r));
  },
});

export const dnsCommands = [query];
