// Every resource module, and what the simulator builds from them. Each resource of core/resources.ts is
// served by its module ./resources/<name>.ts, found by its name, so a new resource is its module with no
// line here or elsewhere; one without a module stops the simulator as it loads. Besides its routes and
// ground truth, a module may bring scale knobs, a ground truth of data it computes itself and files that
// HEAD /v2/files serves (./serve.ts SimResource); the scale defaults, the CLI's flags and `sim.expected`
// are built here from them.
import { RESOURCE_NAMES, type ResourceName } from '../core/resources.ts';
import { DATA_HASH_TAGS, DEFAULT_DATA_SCALE, type SimData, type SimScale } from './data.ts';
import { dataExpectedAt, type Expected, type ScaleKnob, type SimResource } from './serve.ts';

async function load(name: ResourceName): Promise<[ResourceName, SimResource]> {
  const module = (await import(`./resources/${name}.ts`)) as { default?: SimResource };
  if (!module.default?.routes)
    throw new Error(`sim/resources/${name}.ts: no default export of a SimResource`);
  return [name, module.default];
}

export const SIM_RESOURCES = Object.fromEntries(await Promise.all(RESOURCE_NAMES.map(load))) as Readonly<
  Record<ResourceName, SimResource>
>;

/** Names the modules add to a shared space (hash tags, scale knobs, ground truth): one owner each. */
function claim(taken: Map<string, string>, key: string, owner: string, what: string): void {
  const other = taken.get(key);
  if (other !== undefined) throw new Error(`sim/resources/${owner}.ts: ${what} ${key} is ${other}'s`);
  taken.set(key, owner);
}

const tags = new Map(DATA_HASH_TAGS.map((tag) => [String(tag), 'SimData']));
for (const [name, r] of Object.entries(SIM_RESOURCES)) {
  if (r.hashTag !== undefined) claim(tags, String(r.hashTag), name, 'hash tag');
}

/** The modules' scale knobs, in the order of core/resources.ts. */
export const SCALE_KNOBS: ReadonlyArray<ScaleKnob & { name: string }> = Object.values(SIM_RESOURCES).flatMap(
  (r) => Object.entries(r.scale ?? {}).map(([name, knob]) => ({ name, ...knob })),
);

const scaleNames = new Map(Object.keys(DEFAULT_DATA_SCALE).map((k) => [k, 'SimData']));
for (const [name, r] of Object.entries(SIM_RESOURCES)) {
  for (const knob of Object.keys(r.scale ?? {})) claim(scaleNames, knob, name, 'scale knob');
}

/** Every scale knob's default: SimData's own, then the modules'. */
// The cast is sound: each module adds to SimScale exactly the knobs its `scale` declares (ScaleOf).
export const DEFAULT_SCALE: SimScale = {
  ...DEFAULT_DATA_SCALE,
  ...Object.fromEntries(SCALE_KNOBS.map((k) => [k.name, k.default])),
} as SimScale;

/** The ground truth of `data` at the virtual time `now()` tells: SimData's own, then the modules'. */
export function expectedAt(data: SimData, now: () => number): Expected {
  const expected: Record<string, unknown> = { ...dataExpectedAt(data, now) };
  const owners = new Map(Object.keys(expected).map((k) => [k, 'SimData']));
  for (const [name, r] of Object.entries(SIM_RESOURCES)) {
    for (const [key, value] of Object.entries(r.expected?.(data, now) ?? {})) {
      claim(owners, key, name, 'ground truth');
      expected[key] = value;
    }
  }
  // Sound as DEFAULT_SCALE is: a module adds to Expected exactly what its `expected` returns.
  return expected as unknown as Expected;
}
