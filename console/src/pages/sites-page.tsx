/**
 * Directory sites (operators): each infusion site of the network with its status, time zone and
 * networks; suspend a site (no new referrals are routed to it, the site check suggests others) or
 * activate it again, by a PUT of its Location.
 */
import type { Location } from 'fhir/r4.js';
import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import { ActionButton, Loading, Messages, useAnnounce, useApi, useLoad } from '../components/common.js';
import { loadDirectory } from '../components/directory.js';
import { networkNames } from '../model/directory.js';

export function SitesPage(): JSX.Element {
  const api = useApi();
  const announce = useAnnounce();
  const [error, setError] = useState<unknown>(undefined);
  const [loaded, reload] = useLoad(() => loadDirectory(api, { refresh: true }), [api]);
  const setStatus = async (location: Location & { id: string }, status: 'active' | 'suspended'): Promise<void> => {
    setError(undefined);
    try {
      await api.update({ ...location, status }, { asTenant: api.config.directoryTenant });
      announce(`${location.name ?? location.id} is now ${status}.`);
      await reload();
    } catch (e) {
      setError(e);
    }
  };
  return (
    <div>
      <h1>Directory sites</h1>
      <p>Suspending a site stops new referrals from being routed to it: the site check flags them and suggests other sites.</p>
      <Messages error={error} title="The site was not changed" />
      {loaded.state === 'loading' && <Loading what="the directory" />}
      {loaded.state === 'failed' && <Messages error={loaded.error} title="The directory could not be read" />}
      {loaded.state === 'ready' && (
        <div class="table-wrap">
          <table>
            <caption class="visually-hidden">Sites of the network</caption>
            <thead>
              <tr>
                <th scope="col">Site</th>
                <th scope="col">City</th>
                <th scope="col">Time zone</th>
                <th scope="col">Networks</th>
                <th scope="col">Status</th>
                <th scope="col">Action</th>
              </tr>
            </thead>
            <tbody>
              {[...loaded.value.sites.values()]
                .sort((a, b) => a.name.localeCompare(b.name))
                .map((site) => (
                  <tr key={site.id}>
                    <td>{site.name}</td>
                    <td>{[site.city, site.state].filter(Boolean).join(', ')}</td>
                    <td>{site.timeZone ?? ''}</td>
                    <td>{networkNames(loaded.value, site.id).join(', ')}</td>
                    <td>
                      <span class={`state state-${site.status === 'active' ? 'up' : 'down'}`}>{site.status ?? 'unknown'}</span>
                    </td>
                    <td>
                      {site.status === 'active' ? (
                        <ActionButton onAction={() => setStatus(site.location as Location & { id: string }, 'suspended')}>
                          Suspend<span class="visually-hidden"> {site.name}</span>
                        </ActionButton>
                      ) : (
                        <ActionButton onAction={() => setStatus(site.location as Location & { id: string }, 'active')}>
                          Activate<span class="visually-hidden"> {site.name}</span>
                        </ActionButton>
                      )}
                    </td>
                  </tr>
                ))}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}
