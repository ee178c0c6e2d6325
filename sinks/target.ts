import type { ClickHouseClient } from '@clickhouse/client';
import type avro from 'avsc';
import type { Logger } from '../core/log.ts';
import type { ResourceName } from '../core/resources.ts';
import type { BatchBuffer } from './batch-buffer.ts';
import { isPermanentClickHouseError } from './clickhouse-errors.ts';
import { FatalSinkError, UnmappableSchemaError } from './errors.ts';
import type { RecordCoordinates, SinkTarget } from './ports.ts';
import { IncompatibleSchemaError } from './schema/ddl.ts';
import { deriveLayout } from './schema/layout.ts';
import { applySchema } from './schema/migrate.ts';
import { qualifiedName } from './schema/sql.ts';
import { createRowMapper, type RowMapper } from './schema/rows.ts';

export interface TableTargetOptions {
  resource: ResourceName;
  topic: string;
  dlqTopic: string;
  database: string;
  /** Defaults to the resource name; replays into a new table pass another. */
  table?: string;
  clickhouse: ClickHouseClient;
  logger: Logger;
  /**
   * ClickHouse ≥ 22.2: plain MergeTree tables only honour insert_deduplication_token within a
   * non-replicated deduplication window, which 18.16 does not know; set it on the tables there.
   */
  dedupWindow?: number;
}

/**
 * One resource's tables, following its writer schemas: the first record of each schema id derives
 * the layout from that schema, creates or alters the tables (an incompatible change stops the sink
 * before anything is committed), and compiles the row mapper for it.
 */
export class TableTarget implements SinkTarget {
  readonly resource: ResourceName;
  readonly topic: string;
  readonly dlqTopic: string;
  private readonly mappers = new Map<number, { mapper: RowMapper; tables: string[] }>();

  constructor(private readonly o: TableTargetOptions) {
    this.resource = o.resource;
    this.topic = o.topic;
    this.dlqTopic = o.dlqTopic;
  }

  get table(): string {
    return this.o.table ?? this.o.resource;
  }

  async prepare(schemaId: number, type: avro.Type): Promise<void> {
    let layout: ReturnType<typeof deriveLayout>;
    try {
      layout = deriveLayout(this.o.resource, type, { database: this.o.database, table: this.table });
    } catch (err) {
      throw new UnmappableSchemaError(
        `schema ${schemaId} of ${this.topic} cannot be mapped to tables: ${(err as Error).message}`,
        { cause: err },
      );
    }
    try {
      const ran = await applySchema(this.o.clickhouse, layout);
      if (this.o.dedupWindow) {
        for (const table of [layout.table, ...layout.children]) {
          await this.o.clickhouse.command({
            query: `ALTER TABLE ${qualifiedName(this.o.database, table.name)} MODIFY SETTING non_replicated_deduplication_window = ${this.o.dedupWindow}`,
          });
        }
      }
      const changes = ran.filter((q) => !/^CREATE DATABASE/i.test(q));
      if (changes.length)
        this.o.logger.info(
          { resource: this.o.resource, schemaId, statements: changes.length },
          'tables brought in line with the schema',
        );
    } catch (err) {
      if (err instanceof IncompatibleSchemaError) {
        throw new FatalSinkError(
          `schema ${schemaId} of ${this.topic} is incompatible with table ${this.table}: ${err.message}`,
          { cause: err },
        );
      }
      if (isPermanentClickHouseError(err)) {
        throw new FatalSinkError(
          `creating or altering ${this.table} for schema ${schemaId} failed: ${(err as Error).message}`,
          { cause: err },
        );
      }
      // Anything else (ClickHouse unreachable, a timeout) is transient: the runner retries.
      throw err;
    }
    const mapper = createRowMapper(layout);
    // The client selects no database (the sinks create theirs), so inserts name it.
    this.mappers.set(schemaId, {
      mapper,
      tables: mapper.tables.map((t) => qualifiedName(this.o.database, t)),
    });
  }

  append(
    record: Record<string, unknown>,
    schemaId: number,
    coords: RecordCoordinates,
    buffer: BatchBuffer,
  ): void {
    const prepared = this.mappers.get(schemaId);
    if (!prepared) throw new Error(`schema ${schemaId} was not prepared`);
    prepared.mapper.map(record, coords, buffer.ingestedAt, buffer.out(schemaId, prepared.tables));
  }
}
