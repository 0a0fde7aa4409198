// Egress NAT in the agent's (host) namespace: IPv4 forwarding on, and one nftables table of
// tapmesh's own, `table ip tapmesh`, masquerading the gateway-bridge subnet out of every other
// interface. Installed as one atomic nft batch (replacing an earlier copy, so a restart never
// duplicates rules), checked by listing it back, removed by name. No other table is touched.
export const NFT_TABLE = 'tapmesh';

/** Runs a command (with optional stdin), resolving with stdout; rejects with stderr. */
export type Runner = (cmd: string, args: string[], input?: string) => Promise<string>;

/** The nft batch: create-if-missing, delete, recreate (atomic: the kernel applies all or nothing). */
export function nftScript(subnet: string, bridge: string): string {
  return [
    `table ip ${NFT_TABLE} {}`,
    `delete table ip ${NFT_TABLE}`,
    `table ip ${NFT_TABLE} {`,
    '  comment "tapmesh egress: masquerade of the gateway bridge; removed with the last network"',
    '  chain postrouting {',
    '    type nat hook postrouting priority srcnat; policy accept;',
    `    ip saddr ${subnet} oifname != "${bridge}" masquerade`,
    '  }',
    '}',
    '',
  ].join('\n');
}

export class EgressUnavailable extends Error {}

export class Masquerade {
  constructor(private readonly run: Runner) {}

  /** What install() would do, checked by the kernel without applying it (nft -c). */
  async check(subnet: string, bridge: string): Promise<void> {
    await this.apply(subnet, bridge, ['-c']);
  }

  /** Forwarding on (this namespace only) and the table in place; EgressUnavailable says why not. */
  async install(subnet: string, bridge: string): Promise<void> {
    await this.apply(subnet, bridge, []);
    const listed = await this.run('nft', ['list', 'table', 'ip', NFT_TABLE]).catch((e: Error) => e.message);
    if (!listed.includes('masquerade') || !listed.includes(subnet)) throw new EgressUnavailable(`table ip ${NFT_TABLE} did not read back as written: ${listed.slice(0, 200)}`);
    try {
      await this.run('sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1']);
    } catch (e) {
      throw new EgressUnavailable(`cannot enable net.ipv4.ip_forward: ${(e as Error).message.split('\n')[0]}`);
    }
  }

  private async apply(subnet: string, bridge: string, flags: string[]): Promise<void> {
    try {
      await this.run('nft', ['--version']);
    } catch (e) {
      throw new EgressUnavailable(`nft (nftables) is not installed: ${(e as Error).message.split('\n')[0]}`);
    }
    try {
      await this.run('nft', [...flags, '-f', '-'], nftScript(subnet, bridge));
    } catch (e) {
      throw new EgressUnavailable(`the kernel refused table ip ${NFT_TABLE} (nf_tables with nat/masquerade needed): ${(e as Error).message.split('\n')[0]}`);
    }
  }

  /** Removes our table if it is there. */
  async remove(): Promise<void> {
    const tables = await this.run('nft', ['list', 'tables', 'ip']).catch(() => '');
    if (new RegExp(`^table ip ${NFT_TABLE}$`, 'm').test(tables)) await this.run('nft', ['delete', 'table', 'ip', NFT_TABLE]);
  }
}
