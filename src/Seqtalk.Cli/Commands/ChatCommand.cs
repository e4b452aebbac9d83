using System.CommandLine;

namespace Seqtalk.Cli.Commands;

/// <summary>
/// <c>seqtalk chat --model DIR</c>: an interactive prompt on a terminal; with piped stdin exactly one
/// reply line per input line (an empty line gets an empty reply) and no prompt or greeting.
/// </summary>
internal static class ChatCommand
{
    public static Command Create()
    {
        var model = SharedOptions.Model();
        var maxLength = SharedOptions.MaxLength();

        var command = new Command("chat", "Chat with a model: type a message, read the reply (or pipe lines in).") { model, maxLength };
        command.SetAction(parse => CommandRunner.Run(parse, () =>
        {
            var decode = SharedOptions.ToDecodeOptions(parse.GetValue(maxLength));
            string directory = parse.GetValue(model)!;
            var chat = ChatModel.Load(directory);
            return Console.IsInputRedirected ? Piped(chat, decode) : Interactive(chat, decode, directory);
        }));
        return command;
    }

    private static int Piped(ChatModel chat, Decoding.DecodeOptions decode)
    {
        string? line;
        while ((line = Console.In.ReadLine()) is not null)
        {
            Console.WriteLine(string.IsNullOrWhiteSpace(line) ? "" : CommandRunner.OneLine(chat.Reply(line, decode)));
            Console.Out.Flush();
        }
        return ExitCodes.Ok;
    }

    private static int Interactive(ChatModel chat, Decoding.DecodeOptions decode, string directory)
    {
        // Ctrl-C ends the chat cleanly: a fresh line and exit code 0 instead of a killed process.
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            Console.WriteLine();
            Console.Out.Flush();
            Environment.Exit(ExitCodes.Ok);
        };
        Console.WriteLine($"Chatting with {directory}. Type a message and press Enter; /quit, /exit or Ctrl-D to end.");
        while (true)
        {
            Console.Write("> ");
            string? line = Console.ReadLine();
            if (line is null)
            {
                Console.WriteLine();
                break;
            }
            string text = line.Trim();
            if (text is "/quit" or "/exit") break;
            if (text.Length == 0) continue;
            Console.WriteLine(CommandRunner.OneLine(chat.Reply(text, decode)));
        }
        return ExitCodes.Ok;
    }
}
