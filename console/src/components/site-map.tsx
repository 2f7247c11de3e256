/**
 * The patient's home and the network's sites, drawn: no tiles and no internet, only the
 * directory's positions (Location.position) projected with d3-geo (Mercator fitted to the points
 * that matter), the site check's "too far" distance as a circle around the home, and a scale bar.
 * The requested site is a cross, the suggested ones carry their rank, the others are grey dots.
 * The list beside the map says the same in words (the map is an image for assistive technology).
 */
import { geoCircle, geoMercator, geoPath } from 'd3-geo';
import type { JSX } from 'preact';
import type { GeoPoint } from '../model/geo.js';

export interface MapSite {
  id: string;
  name: string;
  position: GeoPoint;
  role: 'requested' | 'suggested' | 'confirmed' | 'other';
  rank?: number;
}

const WIDTH = 640;
const HEIGHT = 400;
const KM_PER_DEGREE = 111.195;
/** The map never shows less than this around the home. */
const MIN_VIEW_KM = 6;

function niceKm(km: number): number {
  const steps = [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000];
  return steps.reduce((best, s) => (s <= km ? s : best), 1);
}

export function SiteMap(props: {
  home?: { position: GeoPoint; source: 'geolocation' | 'zip-centre' };
  sites: MapSite[];
  tooFarKm: number;
  titleId: string;
  description: string;
}): JSX.Element {
  const { home, sites } = props;
  const focus = sites.filter((s) => s.role !== 'other').map((s) => s.position);
  const anchor = [...focus, ...(home ? [home.position] : [])];
  const ring = home
    ? geoCircle()
        .center([home.position.longitude, home.position.latitude])
        .radius(props.tooFarKm / KM_PER_DEGREE)()
    : undefined;
  // Fit to the points that matter, never tighter than a few kilometres around the home (or the
  // first point), so a ring far larger than the sites does not shrink them to a dot.
  const centre = home?.position ?? anchor[0];
  const minimum = centre
    ? geoCircle()
        .center([centre.longitude, centre.latitude])
        .radius(MIN_VIEW_KM / KM_PER_DEGREE)()
    : undefined;
  const extent = {
    type: 'FeatureCollection',
    features: [
      ...(anchor.length > 0
        ? [{ type: 'Feature', properties: {}, geometry: { type: 'MultiPoint', coordinates: anchor.map((p) => [p.longitude, p.latitude]) } }]
        : []),
      ...(minimum ? [{ type: 'Feature', properties: {}, geometry: minimum }] : []),
    ],
  };
  const projection = geoMercator().fitExtent(
    [
      [40, 30],
      [WIDTH - 40, HEIGHT - 44],
    ],
    extent as Parameters<ReturnType<typeof geoMercator>['fitExtent']>[1],
  );
  const path = geoPath(projection);
  const at = (p: GeoPoint): [number, number] => projection([p.longitude, p.latitude]) ?? [0, 0];
  const inView = (p: GeoPoint): boolean => {
    const [x, y] = at(p);
    return x >= 0 && x <= WIDTH && y >= 0 && y <= HEIGHT;
  };

  // Scale bar: how many pixels a round number of kilometres spans at the map's centre.
  const middle = projection.invert?.([WIDTH / 2, HEIGHT / 2]) ?? [0, 0];
  const east = projection([middle[0] + 1 / (KM_PER_DEGREE * Math.cos((middle[1] * Math.PI) / 180)), middle[1]]) ?? [WIDTH / 2 + 1, 0];
  const pxPerKm = Math.max(1e-6, east[0] - WIDTH / 2);
  const scaleKm = niceKm(120 / pxPerKm);
  const scalePx = scaleKm * pxPerKm;

  return (
    <figure class="site-map">
      <svg
        viewBox={`0 0 ${WIDTH} ${HEIGHT}`}
        role="img"
        aria-labelledby={props.titleId}
        preserveAspectRatio="xMidYMid meet"
        overflow="hidden"
      >
        <title id={props.titleId}>{props.description}</title>
        <rect x="0" y="0" width={WIDTH} height={HEIGHT} class="map-water" />
        {ring && <path d={path(ring) ?? ''} class="map-ring" />}
        {sites
          .filter((s) => s.role === 'other' && inView(s.position))
          .map((s) => {
            const [x, y] = at(s.position);
            return <circle key={s.id} cx={x} cy={y} r={4} class="map-site-other" />;
          })}
        {sites
          .filter((s) => s.role === 'requested')
          .map((s) => {
            const [x, y] = at(s.position);
            return (
              <g key={s.id} class="map-site-requested" transform={`translate(${x} ${y})`}>
                <path d="M-7,-7 L7,7 M-7,7 L7,-7" />
                <text x={10} y={4}>
                  requested
                </text>
              </g>
            );
          })}
        {sites
          .filter((s) => s.role === 'suggested' || s.role === 'confirmed')
          .map((s) => {
            const [x, y] = at(s.position);
            return (
              <g key={s.id} class={s.role === 'confirmed' ? 'map-site-confirmed' : 'map-site-suggested'} transform={`translate(${x} ${y})`}>
                <circle r={10} />
                <text y={4} text-anchor="middle">
                  {s.role === 'confirmed' ? '✓' : s.rank}
                </text>
              </g>
            );
          })}
        {home && (
          <g class="map-home" transform={`translate(${at(home.position)[0]} ${at(home.position)[1]})`}>
            <path d="M0,-10 L10,-1 L7,-1 L7,9 L-7,9 L-7,-1 L-10,-1 Z" />
          </g>
        )}
        <g class="map-scale" transform={`translate(16 ${HEIGHT - 18})`}>
          <path d={`M0,0 L${scalePx},0 M0,-5 L0,5 M${scalePx},-5 L${scalePx},5`} />
          <text x={scalePx + 6} y={4}>
            {scaleKm} km
          </text>
        </g>
      </svg>
      <figcaption>
        <span class="legend legend-home">home{home?.source === 'zip-centre' ? ' (centre of the ZIP code)' : ''}</span>
        <span class="legend legend-suggested">suggested site, by rank</span>
        <span class="legend legend-requested">requested site</span>
        <span class="legend legend-ring">{props.tooFarKm} km from home</span>
      </figcaption>
    </figure>
  );
}
