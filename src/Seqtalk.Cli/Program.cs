using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Invocation;
using Seqtalk.Cli.Commands;

// seqtalk: builds the command tree and hands over to the commands in Commands/.
// A plain Command named "seqtalk" rather than RootCommand, whose name would be the assembly's (Seqtalk.Cli).
var root = new Command("seqtalk", "Train LSTM seq2seq chatbots on question/answer pairs, then reply, chat and evaluate.")
{
    new HelpOption(),
    new VersionOption(),
    TrainCommand.Create(),
    ReplyCommand.Create(),
    ChatCommand.Create(),
    EvalCommand.Create(),
    InfoCommand.Create(),
    ServeCommand.Create(),
};

// No response files: a question may start with '@'.
var parse = root.Parse(args, new ParserConfiguration { ResponseFileTokenReplacer = null });
if (parse.Action is ParseErrorAction)
{
    // One clear line and a hint instead of the error list plus the full help text.
    Console.Error.WriteLine($"error: {CommandRunner.DescribeParseError(parse)} ({CommandRunner.HelpHint(parse)})");
    return ExitCodes.Usage;
}
return parse.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false, ProcessTerminationTimeout = null });
