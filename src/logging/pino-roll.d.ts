// pino-roll ships no type declarations; this is the part of its API Relais uses.
declare module 'pino-roll' {
  import type { SonicBoom } from 'sonic-boom';

  interface PinoRollOptions {
    file: string;
    size?: string | number;
    frequency?: 'daily' | 'hourly' | number;
    dateFormat?: string;
    extension?: string;
    symlink?: boolean;
    mkdir?: boolean;
    sync?: boolean;
    maxLength?: number;
    limit?: { count: number; removeOtherLogFiles?: boolean };
  }

  /** SonicBoom's typings omit `file`, the path it writes to now (it changes at each rotation). */
  export type RollStream = SonicBoom & { file: string | null };

  export default function pinoRoll(options: PinoRollOptions): Promise<RollStream>;
}
