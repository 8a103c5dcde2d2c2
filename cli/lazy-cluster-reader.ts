import type { ClusterReader, InventoryNamespace, InventoryPod, MounterPod } from '../lib/audit/index.js';
import type { KubeconfigOptions } from './cluster-error.js';
import type { ExplainTarget } from './explain-target.js';
import type { KubeClusterReader } from './kube-reader.js';

/**
 * A ClusterReader that loads @kubernetes/client-node on first use. The client takes about 0.6 s
 * and 50 MiB to load, which `serve` and `inject`, sharing the CLI's module graph, should not pay.
 */
export class LazyClusterReader implements ClusterReader {
  private reader: Promise<KubeClusterReader> | undefined;

  constructor(
    private readonly options: KubeconfigOptions,
    private readonly pageSize?: number,
  ) {}

  private load(): Promise<KubeClusterReader> {
    this.reader ??= import('./kube-reader.js').then(async ({ KubeClusterReader, loadKubeConfig }) =>
      KubeClusterReader.fromKubeConfig(await loadKubeConfig(this.options), this.pageSize),
    );
    return this.reader;
  }

  async *listNamespaces(): AsyncIterable<InventoryNamespace> {
    yield* (await this.load()).listNamespaces();
  }

  async readNamespace(name: string): Promise<InventoryNamespace | undefined> {
    return (await this.load()).readNamespace(name);
  }

  async *listPods(namespace?: string): AsyncIterable<InventoryPod> {
    yield* (await this.load()).listPods(namespace);
  }

  async listMounterPods(namespace: string): Promise<MounterPod[]> {
    return (await this.load()).listMounterPods(namespace);
  }

  async readObject(target: ExplainTarget): Promise<Record<string, unknown> | undefined> {
    return (await this.load()).readObject(target);
  }
}
