import { Command, type Option } from 'commander';
import { AGENT_VERSION } from '../version.js';

/**
 * `codedeploy-agent completion bash|zsh` and the hidden `codedeploy-agent man`: the shell completions and
 * the man page, generated from the same commander definitions as `--help`, so they cannot drift from it.
 * `npm run docs` writes them to completions/ and man/ (committed; the packages install those files), and a
 * test checks the committed files equal what the program prints.
 */
export function register(program: Command): void {
  program
    .command('completion')
    .description('print the shell completion script for bash or zsh')
    .argument('<shell>', 'bash or zsh')
    .action((shell: string) => {
      if (shell === 'bash') process.stdout.write(bashCompletion(program));
      else if (shell === 'zsh') process.stdout.write(zshCompletion(program));
      else {
        process.stderr.write(`ERROR: no completion for ${shell}: give bash or zsh\n`);
        process.exitCode = 1;
      }
    });
  program
    .command('man', { hidden: true })
    .description('print the man page (roff)')
    .action(() => {
      process.stdout.write(manPage(program));
    });
}

interface CommandDoc {
  name: string;
  aliases: string[];
  usage: string;
  description: string;
  options: Option[];
  args: { name: string; description: string; required: boolean }[];
}

/** The visible subcommands with their visible options, in help order (help and the docs commands left out). */
export function commandDocs(program: Command): CommandDoc[] {
  return program.commands
    .filter((command) => !(command as unknown as { _hidden?: boolean })._hidden && command.name() !== 'help')
    .map((command) => ({
      name: command.name(),
      aliases: command.aliases(),
      usage: command.usage(),
      description: command.description(),
      options: visibleOptions(command),
      args: command.registeredArguments.map((arg) => ({ name: arg.name(), description: arg.description, required: arg.required })),
    }));
}

function visibleOptions(command: Command): Option[] {
  const help = command.createHelp();
  return help.visibleOptions(command);
}

/** What `--help` says of an option's default and environment variable, as commander prints it. */
function optionExtras(option: Option): string {
  const extras: string[] = [];
  if (option.defaultValue !== undefined && !option.negate) extras.push(`default: ${JSON.stringify(option.defaultValue)}`);
  if (option.envVar !== undefined) extras.push(`env: ${option.envVar}`);
  return extras.length > 0 ? ` (${extras.join(', ')})` : '';
}

const takesFile = (option: Option) => /<(file|path|location)>/.test(option.flags);

// ---- man page -------------------------------------------------------------------------------------------

function roff(text: string): string {
  return text.replaceAll('\\', '\\e').replaceAll('-', '\\-').replace(/^([.'])/gm, '\\&$1');
}

export function manPage(program: Command): string {
  const lines = [
    `.TH CODEDEPLOY-AGENT 8 "" "codedeploy-agent ${AGENT_VERSION}" "System Administration"`,
    '.SH NAME',
    'codedeploy\\-agent, codedeploy\\-local \\- AWS CodeDeploy host agent (a drop\\-in replacement for AWS\'s agent)',
    '.SH SYNOPSIS',
    '.B codedeploy\\-agent',
    '.I command',
    '[\\fIoptions\\fR]',
    '.br',
    '.B codedeploy\\-local',
    '[\\fIoptions of deploy\\fR]',
    '.br',
    '.B codedeploy\\-agent',
    '\\-\\-version | \\-\\-help',
    '.SH DESCRIPTION',
    roff(
      'codedeploy-agent runs on EC2 and on-premises Linux hosts as a systemd service: it polls the AWS CodeDeploy ' +
        'commands service over outbound HTTPS, downloads revisions (S3, GitHub, local), unpacks them, installs files ' +
        'as appspec.yml says, applies permissions and runs the lifecycle hooks with their timeouts and runas users. ' +
        'It reads the configuration keys of AWS\'s agent and keeps its on-disk layout. codedeploy-local is the same ' +
        'program: it takes the options of the deploy command.',
    ),
    '.SH COMMANDS',
  ];
  for (const command of commandDocs(program)) {
    lines.push('.SS', `.B codedeploy\\-agent ${roff(command.name)} ${roff(command.usage)}`);
    lines.push(roff(command.description));
    if (command.args.length > 0) {
      for (const arg of command.args) lines.push('.TP', `.I ${roff(arg.name)}`, roff(arg.description));
    }
    for (const option of command.options) {
      lines.push('.TP', `.B ${roff(option.flags)}`, roff(`${option.description}${optionExtras(option)}`));
    }
  }
  lines.push(
    '.SH FILES',
    '.TP',
    '.I /etc/codedeploy\\-agent/conf/codedeployagent.yml',
    roff('The agent configuration (AWS\'s keys, with or without the leading colons); -c names another.'),
    '.TP',
    '.I /etc/codedeploy\\-agent/conf/codedeploy.onpremises.yml',
    roff('The on-premises identity written by register (mode 0600).'),
    '.TP',
    '.I /var/log/aws/codedeploy\\-agent/codedeploy\\-agent.log',
    roff('The agent\'s log (log_dir), rotated daily.'),
    '.TP',
    '.I /var/log/aws/codedeploy\\-agent/codedeploy\\-local.log',
    roff('The log of deploy (codedeploy-local), in the same folder.'),
    '.TP',
    '.I /opt/codedeploy\\-agent/deployment\\-root/',
    roff('The deployment root (root_dir): each deployment\'s bundle, its logs/scripts.log with every hook\'s output, and deployment-logs/codedeploy-agent-deployments.log.'),
    '.SH EXIT STATUS',
    roff('0 on success and for --help and --version; 1 when a command fails (deploy: when an event failed). status exits 0 when the agent runs, 3 when it does not, 4 when its state cannot be read.'),
    '.SH SEE ALSO',
    roff('systemctl(1), journalctl(1); the README and docs/ of the codedeploy-agent repository.'),
    '',
  );
  return lines.join('\n');
}

// ---- bash -------------------------------------------------------------------------------------------------

export function bashCompletion(program: Command): string {
  const commands = commandDocs(program);
  const names = commands.flatMap((command) => [command.name, ...command.aliases]);
  const cases = commands.map((command) => {
    const flags = command.options.flatMap((option) => [option.short, option.long].filter((flag): flag is string => flag !== undefined));
    const fileFlags = command.options.filter(takesFile).flatMap((option) => [option.short, option.long].filter((flag): flag is string => flag !== undefined));
    const valued = command.options.filter((option) => option.required || option.optional).flatMap((option) => [option.short, option.long].filter((flag): flag is string => flag !== undefined));
    const takesPath = command.args.length > 0;
    return [
      `    ${[command.name, ...command.aliases].join('|')})`,
      `      flags="${flags.join(' ')}"`,
      `      file_flags="${fileFlags.join(' ')}"`,
      `      value_flags="${valued.join(' ')}"`,
      `      path_argument=${takesPath ? 1 : 0}`,
      '      ;;',
    ].join('\n');
  });
  const deploy = commands.find((command) => command.name === 'deploy');
  const localFlags = deploy ? deploy.options.flatMap((option) => [option.short, option.long].filter((flag): flag is string => flag !== undefined)) : [];
  const localFileFlags = deploy ? deploy.options.filter(takesFile).flatMap((option) => [option.short, option.long].filter((flag): flag is string => flag !== undefined)) : [];
  const localValued = deploy ? deploy.options.filter((option) => option.required || option.optional).flatMap((option) => [option.short, option.long].filter((flag): flag is string => flag !== undefined)) : [];
  return `# bash completion for codedeploy-agent and codedeploy-local (generated by \`codedeploy-agent completion bash\`)
_codedeploy_agent() {
  local cur prev word command="" flags="" file_flags="" value_flags="" path_argument=0 i
  cur="\${COMP_WORDS[COMP_CWORD]}"
  prev="\${COMP_WORDS[COMP_CWORD-1]}"
  if [ "\${COMP_WORDS[0]##*/}" = codedeploy-local ]; then
    command=deploy
    flags="${localFlags.join(' ')}"
    file_flags="${localFileFlags.join(' ')}"
    value_flags="${localValued.join(' ')}"
  else
    for ((i = 1; i < COMP_CWORD; i++)); do
      word="\${COMP_WORDS[i]}"
      case "$word" in -*) ;; *) command="$word"; break ;; esac
    done
    if [ -z "$command" ]; then
      COMPREPLY=($(compgen -W "${names.join(' ')} help --version --help" -- "$cur"))
      return
    fi
    case "$command" in
${cases.join('\n')}
      *) return ;;
    esac
  fi
  case " $file_flags " in *" $prev "*) COMPREPLY=($(compgen -f -- "$cur")); return ;; esac
  case " $value_flags " in *" $prev "*) return ;; esac
  if [[ "$cur" == -* ]] || [ "$path_argument" = 0 ]; then
    COMPREPLY=($(compgen -W "$flags --help" -- "$cur"))
  else
    COMPREPLY=($(compgen -f -- "$cur"))
  fi
}
complete -o filenames -F _codedeploy_agent codedeploy-agent codedeploy-local
`;
}

// ---- zsh --------------------------------------------------------------------------------------------------

function zshQuote(text: string): string {
  return text.replaceAll("'", "'\\''").replaceAll('[', '\\[').replaceAll(']', '\\]').replaceAll(':', '\\:');
}

function zshSpecs(options: Option[]): string[] {
  return options.map((option) => {
    const names = [option.short, option.long].filter((flag): flag is string => flag !== undefined);
    const value = option.required || option.optional ? `:${zshQuote(option.flags.replace(/^.*[<[]([^>\]]+)[>\]].*$/, '$1'))}:${takesFile(option) ? '_files' : ' '}` : '';
    const description = zshQuote(option.description.split(' (')[0]);
    if (names.length === 1) return `'${names[0]}[${description}]${value}'`;
    return `'(${names.join(' ')})'{${names.join(',')}}'[${description}]${value}'`;
  });
}

export function zshCompletion(program: Command): string {
  const commands = commandDocs(program);
  const list = commands.map((command) => `    '${command.name}:${zshQuote(command.description)}'`);
  const cases = commands.map((command) => {
    const args = command.args.map((arg) => `'${arg.required ? '' : ':'}:${zshQuote(arg.name)}:_files'`);
    return `        ${[command.name, ...command.aliases].join('|')})\n          _arguments -s ${[...zshSpecs(command.options), ...args].join(' ')}\n          ;;`;
  });
  const deploy = commands.find((command) => command.name === 'deploy');
  return `#compdef codedeploy-agent codedeploy-local
# zsh completion for codedeploy-agent and codedeploy-local (generated by \`codedeploy-agent completion zsh\`)
_codedeploy_agent() {
  local -a commands
  commands=(
${list.join('\n')}
  )
  if [[ $service == codedeploy-local ]]; then
    _arguments -s ${deploy ? zshSpecs(deploy.options).join(' ') : ''}
    return
  fi
  _arguments -C '(- *)'{-v,--version}'[print the agent version]' '(- *)'{-h,--help}'[display help]' '1:command:->command' '*::argument:->argument'
  case $state in
    command) _describe -t commands 'codedeploy-agent command' commands ;;
    argument)
      case $words[1] in
${cases.join('\n')}
      esac
      ;;
  esac
}
_codedeploy_agent "$@"
`;
}
