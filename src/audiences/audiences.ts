import type { Config } from '../config/schema.js';
import type { Clock } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import type { Store } from '../store/store.js';
import { ContactService } from './contacts.js';
import { ImportService } from './csv-import.js';
import { ListService } from './lists.js';

/** Contacts, lists and CSV imports: the audiences campaigns are sent to. */
export interface Audiences {
  contacts: ContactService;
  lists: ListService;
  imports: ImportService;
}

export function buildAudiences(store: Store, clock: Clock, config: Config, logger: Logger): Audiences {
  const lists = new ListService(store, clock);
  return {
    contacts: new ContactService(store, clock),
    lists,
    imports: new ImportService(store, clock, config, lists, logger.child({ role: 'imports' })),
  };
}
