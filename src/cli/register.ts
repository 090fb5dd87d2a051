import { existsSync, mkdirSync, unlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Command } from 'commander';
import { stringify } from 'yaml';
import { loadAgentConfig } from '../config/agent-config.js';
import { AgentError } from '../report/errors.js';
import { writeFileAtomicSync } from '../util/atomic-write.js';
import {
  addTagsToOnPremisesInstance, createControlClient, deregisterOnPremisesInstance, getOnPremisesInstance,
  registerOnPremisesInstance, removeTagsFromOnPremisesInstance, ControlPlaneError, type OnPremisesTag,
} from '../service/codedeploy-control.js';

/**
 * `codedeploy-agent register` / `deregister`: on-premises registration (users-and-peers §3.7), what
 * `aws deploy register-on-premises-instance` plus hand-writing codedeploy.onpremises.yml did before.
 *
 * The API calls are signed with the operator's credentials (the SDK's usual chain). The on-premises file
 * holds the instance's identity: the IAM user's access key (iam_user_arn form) or the path of the
 * credentials file a refresher keeps current (iam_session_arn form).
 */
export class RegisterUsageError extends AgentError {}

/** `k=v,k2=v2` → tags. A value may be empty; a key may not. */
export function parseTags(text: string | undefined): OnPremisesTag[] {
  if (!text) return [];
  return text.split(',').map((pair) => pair.trim()).filter(Boolean).map((pair) => {
    const eq = pair.indexOf('=');
    const key = (eq === -1 ? pair : pair.slice(0, eq)).trim();
    if (!key) throw new RegisterUsageError(`--tags: "${pair}" has no key (write key=value,key2=value2)`);
    return { Key: key, Value: eq === -1 ? '' : pair.slice(eq + 1).trim() };
  });
}

export type OnPremisesConfig =
  | { region: string; iamUserArn: string; accessKeyId: string; secretAccessKey: string }
  | { region: string; iamSessionArn: string; credentialsFile: string };

/** The codedeploy.onpremises.yml text in the documented form (users-and-peers §3.7). */
export function renderOnPremisesConfig(config: OnPremisesConfig, header: string): string {
  const body = 'iamUserArn' in config
    ? {
      aws_access_key_id: config.accessKeyId,
      aws_secret_access_key: config.secretAccessKey,
      iam_user_arn: config.iamUserArn,
      region: config.region,
    }
    : {
      iam_session_arn: config.iamSessionArn,
      aws_credentials_file: config.credentialsFile,
      region: config.region,
    };
  return `---\n# ${header.replace(/\s+/g, ' ')}\n${stringify(body, { version: '1.1' })}`;
}

/** Writes a private file atomically: 0600 from its first byte, then renamed into place. */
export function writePrivateFile(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  writeFileAtomicSync(path, text, 0o600);
}

interface CommonOptions {
  instanceName: string;
  region?: string;
  endpoint?: string;
  configFileOut?: string;
  config?: string;
}

interface RegisterOptions extends CommonOptions {
  iamUserArn?: string;
  iamSessionArn?: string;
  tags?: string;
  accessKeyId?: string;
  secretAccessKey?: string;
  credentialsFile?: string;
  force?: boolean;
}

function regionOf(options: CommonOptions): string {
  const region = options.region ?? process.env.AWS_REGION;
  if (!region) throw new RegisterUsageError('--region is required (or set AWS_REGION)');
  return region;
}

/** Where the on-premises file goes: --config-file-out, else :on_premises_config_file: of the agent config. */
function onPremisesFile(options: CommonOptions): string {
  return options.configFileOut ?? loadAgentConfig(options.config).config.on_premises_config_file;
}

/** The CodeDeploy client of these commands: through `:proxy_uri:` (or the proxy variables), like every other request. */
function controlClient(options: CommonOptions, region: string) {
  const { config } = loadAgentConfig(options.config);
  return createControlClient({ region, endpoint: options.endpoint, proxyUri: config.proxy_uri, env: process.env });
}

const out = (line: string) => process.stdout.write(`${line}\n`);

export async function runRegister(options: RegisterOptions): Promise<void> {
  const region = regionOf(options);
  if (Boolean(options.iamUserArn) === Boolean(options.iamSessionArn)) {
    throw new RegisterUsageError('Pass exactly one of --iam-user-arn (an IAM user with an access key) or --iam-session-arn (an assumed-role session whose credentials file a refresher keeps current)');
  }
  const tags = parseTags(options.tags);
  let onPremises: OnPremisesConfig;
  if (options.iamUserArn) {
    const accessKeyId = options.accessKeyId ?? process.env.AWS_ACCESS_KEY_ID;
    const secretAccessKey = options.secretAccessKey ?? process.env.AWS_SECRET_ACCESS_KEY;
    if (!accessKeyId || !secretAccessKey) {
      throw new RegisterUsageError('--iam-user-arn needs the IAM user\'s access key for the on-premises file: pass --access-key-id and --secret-access-key, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY');
    }
    onPremises = { region, iamUserArn: options.iamUserArn, accessKeyId, secretAccessKey };
  } else {
    if (!options.credentialsFile) {
      throw new RegisterUsageError('--iam-session-arn needs --credentials-file PATH: the AWS credentials file (profile default) that your refresher rewrites with the session\'s keys');
    }
    onPremises = { region, iamSessionArn: options.iamSessionArn!, credentialsFile: options.credentialsFile };
  }
  const file = onPremisesFile(options);
  // Checked before anything is registered, so a refusal leaves nothing half done.
  if (existsSync(file) && !options.force) {
    throw new RegisterUsageError(`${file} already exists (this host is registered already?). Deregister first, or pass --force to replace it.`);
  }
  mkdirSync(dirname(file), { recursive: true, mode: 0o755 });

  const client = controlClient(options, region);
  const context = { region, endpoint: options.endpoint, iamUserArn: options.iamUserArn, iamSessionArn: options.iamSessionArn };
  try {
    await registerOnPremisesInstance(client, { instanceName: options.instanceName, iamUserArn: options.iamUserArn, iamSessionArn: options.iamSessionArn }, context);
    out(`Registered on-premises instance "${options.instanceName}" (${options.iamUserArn ?? options.iamSessionArn}) with CodeDeploy in ${region}.`);
    let tagError: ControlPlaneError | undefined;
    if (tags.length > 0) {
      try {
        await addTagsToOnPremisesInstance(client, options.instanceName, tags, context);
        out(`Tagged it: ${tags.map((t) => `${t.Key}=${t.Value}`).join(', ')}.`);
      } catch (error) {
        if (!(error instanceof ControlPlaneError)) throw error;
        tagError = error;
      }
    }
    writePrivateFile(file, renderOnPremisesConfig(onPremises, `Written by codedeploy-agent register on ${new Date().toISOString()} for instance ${options.instanceName}.`));
    out(`Wrote ${file} (mode 0600). Restart the agent to use it: systemctl restart codedeploy-agent`);
    if ('iamSessionArn' in onPremises && !existsSync(onPremises.credentialsFile)) {
      out(`note: ${onPremises.credentialsFile} does not exist yet; the agent needs it (kept current by your credentials refresher).`);
    }
    if (tagError) {
      throw new AgentError(`The instance is registered and ${file} is written, but tagging failed: ${tagError.message} Tag it later with: aws deploy add-tags-to-on-premises-instances --instance-names ${options.instanceName} --tags ...`);
    }
  } finally {
    client.destroy();
  }
}

export async function runDeregister(options: CommonOptions & { keepConfig?: boolean }): Promise<void> {
  const region = regionOf(options);
  const file = onPremisesFile(options);
  const client = controlClient(options, region);
  const context = { region, endpoint: options.endpoint };
  try {
    const info = await getOnPremisesInstance(client, options.instanceName, context);
    if (info.deregisterTime) {
      out(`On-premises instance "${options.instanceName}" was already deregistered (${info.deregisterTime.toISOString()}).`);
    } else {
      const tags = info.tags ?? [];
      if (tags.length > 0) {
        await removeTagsFromOnPremisesInstance(client, options.instanceName, tags, context);
        out(`Removed its tags: ${tags.map((t) => `${t.Key}=${t.Value ?? ''}`).join(', ')}.`);
      }
      await deregisterOnPremisesInstance(client, options.instanceName, context);
      out(`Deregistered on-premises instance "${options.instanceName}" from CodeDeploy in ${region}.`);
    }
  } finally {
    client.destroy();
  }
  if (options.keepConfig) return;
  try {
    unlinkSync(file);
    out(`Removed ${file}. Stop the agent if this host no longer takes deployments: systemctl stop codedeploy-agent`);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    out(`${file} did not exist; nothing to remove.`);
  }
}

export function register(program: Command): void {
  program
    .command('register')
    .description('register this host as a CodeDeploy on-premises instance and write codedeploy.onpremises.yml (0600)')
    .requiredOption('--instance-name <name>', 'the on-premises instance name')
    .option('--iam-user-arn <arn>', 'IAM user form: the instance authenticates with this user\'s access key')
    .option('--iam-session-arn <arn>', 'IAM session form: arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION')
    .option('--tags <list>', 'tags for the instance: key=value,key2=value2')
    .option('--region <region>', 'the AWS region (default: AWS_REGION)')
    .option('--endpoint <url>', 'CodeDeploy endpoint override')
    .option('--config-file-out <path>', 'where to write the on-premises file (default: :on_premises_config_file: of the agent config)')
    .option('--access-key-id <id>', 'iam-user form: the IAM user\'s access key id (default: AWS_ACCESS_KEY_ID)')
    .option('--secret-access-key <key>', 'iam-user form: its secret (default: AWS_SECRET_ACCESS_KEY; on the command line it is visible to other users)')
    .option('--credentials-file <path>', 'iam-session form: the AWS credentials file your refresher keeps current')
    .option('--force', 'replace an existing on-premises file')
    .option('-c, --config <file>', 'agent configuration file (default /etc/codedeploy-agent/conf/codedeployagent.yml)')
    .action(async (options: RegisterOptions) => {
      await runRegister(options);
    });

  program
    .command('deregister')
    .description('deregister this on-premises instance (removing its tags) and remove codedeploy.onpremises.yml')
    .requiredOption('--instance-name <name>', 'the on-premises instance name')
    .option('--region <region>', 'the AWS region (default: AWS_REGION)')
    .option('--endpoint <url>', 'CodeDeploy endpoint override')
    .option('--config-file-out <path>', 'the on-premises file to remove (default: :on_premises_config_file: of the agent config)')
    .option('--keep-config', 'do not remove the on-premises file')
    .option('-c, --config <file>', 'agent configuration file (default /etc/codedeploy-agent/conf/codedeployagent.yml)')
    .action(async (options: CommonOptions & { keepConfig?: boolean }) => {
      await runDeregister(options);
    });
}
