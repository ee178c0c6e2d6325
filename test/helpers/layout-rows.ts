/**
 * What the DDL and insert tests share: records taken through Avro and the sinks' row mapper exactly as
 * a sink receives and maps them, and what system.columns reports for a table a layout created.
 */
import type { ResourceName } from '../../core/resources.ts';
import { avroType, parseAvroSchema, valueSchema, type AvroRecordSchema } from '../../schemas/index.ts';
import type { ExistingColumn } from '../../sinks/schema/ddl.ts';
import type { ResourceLayout, TableLayout } from '../../sinks/schema/layout.ts';
import { createRowMapper, type Row } from '../../sinks/schema/rows.ts';

export interface MappedRows {
  /** Per table of the layout (mapper order), its name and the rows the records gave it. */
  tables: { name: string; rows: Row[] }[];
}

/**
 * Encodes each record with the resource's schema (or `schema`), decodes it, and maps it at
 * consecutive offsets of partition 0 from `offset` (or every one at `offset` when `sameOffset`).
 */
export function mapRecords(
  layout: ResourceLayout,
  records: readonly unknown[],
  o: { topic: string; offset: number; ingestedAt: number; schema?: AvroRecordSchema; sameOffset?: boolean },
): MappedRows {
  const type = o.schema ? parseAvroSchema(o.schema) : avroType(layout.resource);
  const mapper = createRowMapper(layout);
  const out = mapper.buffers();
  records.forEach((r, i) => {
    const offset = o.sameOffset ? o.offset : o.offset + i;
    mapper.map(
      type.fromBuffer(type.toBuffer(r)),
      { topic: o.topic, partition: 0, offset: String(offset) },
      o.ingestedAt,
      out,
    );
  });
  return { tables: mapper.tables.map((name, i) => ({ name, rows: out[i] as Row[] })) };
}

/** JSONEachRow lines of rows, as the sinks stream them. */
export function jsonLines(rows: readonly Row[]): Buffer[] {
  return rows.map((row) => Buffer.from(JSON.stringify(row) + '\n'));
}

/** What system.columns would report for a table created from this layout. */
export function existingColumns(table: TableLayout): ExistingColumn[] {
  return table.columns.map((c) => ({
    name: c.name,
    type: c.type,
    default_kind:
      c.source === 'alias'
        ? 'ALIAS'
        : c.source === 'materialized'
          ? 'MATERIALIZED'
          : c.expression
            ? 'DEFAULT'
            : '',
  }));
}

export /** A schema of a resource with two more fields, one of them a timestamp (so a `_dt` column too). */
function withNewFields(resource: ResourceName): AvroRecordSchema {
  const v1 = valueSchema(resource);
  return {
    ...v1,
    fields: [
      ...v1.fields,
      { name: 'owner_email', type: ['null', 'string'], default: null },
      {
        name: 'archived_at_ms',
        type: ['null', { type: 'long', logicalType: 'timestamp-millis' }],
        default: null,
      },
    ],
  };
}
