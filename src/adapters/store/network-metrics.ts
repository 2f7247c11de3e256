/**
 * The SQL behind `$network-metrics` (src/directory/stories/network-metrics.ts): grouped counts over the
 * referrals table and the search index, on both engines. Nothing here loads a referral: each
 * query returns one row per group (status, drug x site x day count, site x appointment status),
 * so the answer's size follows the directory and the period, not the number of referrals.
 *
 * The appointments, appeal Tasks and their links are read from the search index rows that every
 * stored version writes (src/fhir/search-parameters.ts): Appointment `based-on`, `status`,
 * `date`, `location`; Task `code`, `status`, `part-of`, `authored-on`.
 */
import { sql, type Kysely, type RawBuilder } from 'kysely';
import type { NetworkMetricsQuery, NetworkMetricsRows } from '../../ports/resource-store.js';
import { APPEAL_STEP_SYSTEM } from '../../coverage/rules/appeal.js';
import type { StoreEngine } from './engine.js';
import type { StoreDatabase } from './schema.js';

/** Appointment statuses that mean a chair was booked for the patient, or the dose given. */
const BOOKED_OR_GIVEN = ['booked', 'arrived', 'checked-in', 'fulfilled'];
/** Appointment statuses of a visit whose time has come: given, or missed. */
const DUE = [...BOOKED_OR_GIVEN, 'noshow'];

function jsonText(engine: StoreEngine, column: string, path: readonly string[]): RawBuilder<string | null> {
  if (engine === 'postgresql') {
    const [last, ...parents] = [...path].reverse();
    const chain = parents.reverse().map((key) => sql`->${sql.lit(key)}`);
    return sql<string | null>`(${sql.ref(column)}${sql.join(chain, sql``)}->>${sql.lit(last!)})`;
  }
  return sql<string | null>`json_extract(${sql.ref(column)}, ${sql.lit(`$.${path.join('.')}`)})`;
}

/** Whole days from one ISO date or instant to another, rounded down. */
function wholeDays(engine: StoreEngine, from: RawBuilder<unknown>, to: RawBuilder<unknown>): RawBuilder<number> {
  if (engine === 'postgresql') {
    return sql<number>`floor(extract(epoch from ((${to})::timestamptz - (${from})::timestamptz)) / 86400)::integer`;
  }
  return sql<number>`cast(floor(julianday(${to}) - julianday(${from})) as integer)`;
}

const count = (value: unknown): number => Number(value);

export async function networkMetrics(
  db: Kysely<StoreDatabase>,
  engine: StoreEngine,
  query: NetworkMetricsQuery,
): Promise<NetworkMetricsRows> {
  const tenants = sql.join(query.tenants.map((t) => sql`${t}`));
  const inPeriod = sql`r.tenant in (${tenants}) and r.created_at >= ${query.from} and r.created_at < ${query.to}`;

  const byStatus = await sql<{ status: string; n: unknown }>`
    select r.status as status, count(*) as n from referrals r where ${inPeriod} group by r.status`.execute(db);

  const misroutes = await sql<{ status: string; n: unknown }>`
    select r.status as status, count(*) as n from referrals r
    where ${inPeriod} and ${jsonText(engine, 'r.referral', ['siteCheck', 'decision'])} = 'misroute-suspected'
    group by r.status`.execute(db);

  // Each referral's first appointment that was booked or given (a missed or cancelled one does not
  // count: the patient had no infusion then), with its site.
  const orderedAt = sql`coalesce(${jsonText(engine, 'r.referral', ['authoredOn'])}, r.created_at)`;
  // `b.ref_id is not null`: the reference index is partial (docs/search.md#partial-value-indexes).
  const firsts = await sql<{ drug_id: string | null; drug_name: string | null; site_id: string | null; days: unknown; n: unknown }>`
    with appointments as (
      select b.tenant as tenant, b.ref_id as service_request_id, d.date_low as start_at, l.ref_id as site_id,
             row_number() over (partition by b.tenant, b.ref_id order by d.date_low, b.resource_id) as position
      from search_index b
      join search_index s on s.tenant = b.tenant and s.resource_type = 'Appointment' and s.resource_id = b.resource_id and s.param = 'status'
      join search_index d on d.tenant = b.tenant and d.resource_type = 'Appointment' and d.resource_id = b.resource_id and d.param = 'date'
      left join search_index l on l.tenant = b.tenant and l.resource_type = 'Appointment' and l.resource_id = b.resource_id and l.param = 'location'
      where b.tenant in (${tenants}) and b.resource_type = 'Appointment' and b.param = 'based-on' and b.ref_id is not null and b.ref_type = 'ServiceRequest'
        and s.token_code in (${sql.join(BOOKED_OR_GIVEN)})
    )
    select ${jsonText(engine, 'r.referral', ['drug', 'catalogId'])} as drug_id, ${jsonText(engine, 'r.referral', ['drug', 'name'])} as drug_name,
           a.site_id as site_id, ${wholeDays(engine, orderedAt, sql`a.start_at`)} as days, count(*) as n
    from appointments a
    join referrals r on r.tenant = a.tenant and r.service_request_id = a.service_request_id
    where a.position = 1 and ${inPeriod}
    group by 1, 2, 3, 4`.execute(db);

  const appeals = await sql<{ appeal_status: string | null; referral_status: string; n: unknown }>`
    select s.token_code as appeal_status, r.status as referral_status, count(*) as n
    from search_index c
    join search_index s on s.tenant = c.tenant and s.resource_type = 'Task' and s.resource_id = c.resource_id and s.param = 'status'
    join search_index a on a.tenant = c.tenant and a.resource_type = 'Task' and a.resource_id = c.resource_id and a.param = 'authored-on'
    join search_index p on p.tenant = c.tenant and p.resource_type = 'Task' and p.resource_id = c.resource_id and p.param = 'part-of'
    join referrals r on r.tenant = c.tenant and r.task_id = p.ref_id
    where c.tenant in (${tenants}) and c.resource_type = 'Task' and c.param = 'code'
      and c.token_system = ${APPEAL_STEP_SYSTEM} and c.token_code = 'appeal'
      and a.date_low >= ${query.from} and a.date_low < ${query.to}
    group by s.token_code, r.status`.execute(db);

  const dueBefore = query.now < query.to ? query.now : query.to;
  const appointments = await sql<{ site_id: string | null; status: string | null; n: unknown }>`
    select l.ref_id as site_id, s.token_code as status, count(*) as n
    from search_index d
    join search_index s on s.tenant = d.tenant and s.resource_type = 'Appointment' and s.resource_id = d.resource_id and s.param = 'status'
    left join search_index l on l.tenant = d.tenant and l.resource_type = 'Appointment' and l.resource_id = d.resource_id and l.param = 'location'
    where d.tenant in (${tenants}) and d.resource_type = 'Appointment' and d.param = 'date'
      and d.date_low >= ${query.from} and d.date_low < ${dueBefore}
      and s.token_code in (${sql.join(DUE)})
    group by l.ref_id, s.token_code`.execute(db);

  return {
    referralsByStatus: byStatus.rows.map((r) => ({ status: r.status, count: count(r.n) })),
    misroutesByStatus: misroutes.rows.map((r) => ({ status: r.status, count: count(r.n) })),
    daysToFirstInfusion: firsts.rows.map((r) => ({
      drugId: r.drug_id ?? 'unknown',
      drugName: r.drug_name ?? r.drug_id ?? 'unknown',
      siteId: r.site_id ?? 'unknown',
      days: Math.max(0, count(r.days)),
      count: count(r.n),
    })),
    appeals: appeals.rows.map((r) => ({
      appealStatus: r.appeal_status ?? 'unknown',
      referralStatus: r.referral_status,
      count: count(r.n),
    })),
    appointmentsDue: appointments.rows.map((r) => ({ siteId: r.site_id ?? 'unknown', status: r.status ?? 'unknown', count: count(r.n) })),
  };
}
