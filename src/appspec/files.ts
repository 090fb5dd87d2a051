import { isMap, isSeq } from 'yaml';
import type { SourcePosition } from '../report/errors.js';
import type { AppSpecReader, MapEntry } from './reader.js';
import { closestName } from './suggest.js';
import type { FileMapping } from './types.js';

const FILE_KEYS = ['source', 'destination'];

const NO_SOURCE =
  'The deployment failed because the application specification file specifies a destination file, but no source file. Update the files section of the AppSpec file, and then try again.';

/**
 * The `files` section: source/destination pairs in file order. Fills `positions`
 * with where each source was written, for later checks against the bundle.
 */
export function parseFiles(reader: AppSpecReader, section: MapEntry, positions: Map<object, SourcePosition>): FileMapping[] {
  const files: FileMapping[] = [];
  if (section.value === undefined) return files;
  if (!isSeq(section.value)) {
    reader.wrongType(section.at, 'files', 'a list of source/destination pairs', section.value,
      'start each pair with a dash: "- source: /" followed by "  destination: /var/www/app"');
    return files;
  }
  reader.items(section.value).forEach((item, index) => {
    const what = `files[${index}]`;
    if (item.value === undefined) {
      reader.error(item.at, NO_SOURCE, 'write "- source: <path in the bundle>" and "  destination: <absolute folder>"');
      return;
    }
    if (!isMap(item.value)) {
      reader.wrongType(item.at, what, 'a mapping with source and destination', item.value,
        'write "- source: <path in the bundle>" and "  destination: <absolute folder>"');
      return;
    }
    const entries = reader.entries(item.value);
    for (const [key, entry] of entries) {
      if (FILE_KEYS.includes(key)) continue;
      const suggestion = closestName(key, FILE_KEYS);
      const hint = suggestion
        ? `did you mean ${suggestion}?`
        : key === 'overwrite'
          ? 'what happens to files that already exist is set once, by file_exists_behavior at the top level'
          : 'a files entry takes source and destination';
      reader.warn(entry.keyNode, `${what} has an unknown key ${key}, which is ignored`, hint);
    }

    const sourceEntry = entries.get('source');
    const destinationEntry = entries.get('destination');
    const source = sourceEntry && reader.expectText(sourceEntry, `${what}.source`, 'write one path in the bundle; / means the whole bundle');
    const destination = destinationEntry && reader.expectText(destinationEntry, `${what}.destination`, 'write one absolute folder path');
    if (sourceEntry?.value === undefined) {
      reader.error(sourceEntry?.at ?? item.value, NO_SOURCE, 'add "source: <path in the bundle>"; / means the whole bundle');
      return;
    }
    if (destinationEntry?.value === undefined) {
      reader.error(destinationEntry?.at ?? item.value,
        `The deployment failed because the application specification file specifies only a source file (${source ?? ''}). Add the name of the destination file to the files section of the AppSpec file, and then try again.`,
        'add "destination: <absolute folder>", e.g. destination: /var/www/app');
    }
    if (source === undefined) return;
    // Kept even when the destination has a problem (which already withholds the appspec), so that
    // validate can still check the source against the bundle.
    const mapping: FileMapping = { source, destination: destination ?? '' };
    positions.set(mapping, reader.position(sourceEntry.at));
    files.push(mapping);
    if (destination !== undefined && destinationEntry?.value !== undefined && !isAbsoluteDestination(destination)) {
      reader.warn(destinationEntry.at, `${what}.destination ${destination} is not an absolute path; the agent resolves it against its own working directory`,
        `write the full path, e.g. /${destination.replace(/^\.?\/*/, '')}`);
    }
  });
  return files;
}

/** `/srv/app`, or `C:\app` in an appspec for Windows instances. */
function isAbsoluteDestination(path: string): boolean {
  return path.startsWith('/') || /^[A-Za-z]:[\\/]/.test(path);
}
