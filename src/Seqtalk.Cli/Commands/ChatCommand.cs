using System.CommandLine;
using Seqtalk.Decoding;

namespace Seqtalk.Cli.Commands;

/// <summary>
/// <c>seqtalk chat --model DIR</c>: an interactive prompt on a terminal; with piped stdin exactly one
/// reply line per input line (an empty line gets an empty reply; with --nbest N, N candidate lines) and no prompt
/// or greeting. <c>/set NAME VALUE</c> changes a decoding setting and <c>/settings</c> shows them, each answered
/// with one line (the settings, or "error: …").
/// </summary>
internal static class ChatCommand
{
    public static Command Create()
    {
        var model = SharedOptions.Model();
        var decodeFlags = new DecodeFlags();

        var command = new Command("chat", "Chat with a model: type a message, read the reply (or pipe lines in).") { model };
        decodeFlags.AddTo(command);
        command.SetAction(parse => CommandRunner.Run(parse, () =>
        {
            var decode = decodeFlags.Read(parse);
            string directory = parse.GetValue(model)!;
            var chat = ChatModel.Load(directory);
            return Console.IsInputRedirected ? Piped(chat, decode) : Interactive(chat, decode, directory);
        }));
        return command;
    }

    private static int Piped(ChatModel chat, DecodeOptions decode)
    {
        string? line;
        while ((line = Console.In.ReadLine()) is not null)
        {
            if (string.IsNullOrWhiteSpace(line)) Console.WriteLine();
            else if (!HandleSetting(line.Trim(), ref decode)) DecodeFlags.Print(chat, [line], decode, Console.Out);
            Console.Out.Flush();
        }
        return ExitCodes.Ok;
    }

    private static int Interactive(ChatModel chat, DecodeOptions decode, string directory)
    {
        // Ctrl-C ends the chat cleanly: a fresh line and exit code 0 instead of a killed process.
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            Console.WriteLine();
            Console.Out.Flush();
            Environment.Exit(ExitCodes.Ok);
        };
        Console.WriteLine($"Chatting with {directory}. Type a message and press Enter; /set NAME VALUE changes decoding (/settings shows it); /quit, /exit or Ctrl-D to end.");
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
            if (HandleSetting(text, ref decode)) continue;
            DecodeFlags.Print(chat, [text], decode, Console.Out);
        }
        return ExitCodes.Ok;
    }

    /// <summary>Handles <c>/settings</c> and <c>/set NAME VALUE</c>; true when the line was a command. A bad setting
    /// prints one error line and keeps the old settings.</summary>
    internal static bool HandleSetting(string text, ref DecodeOptions decode)
    {
        if (text == "/settings")
        {
            Console.WriteLine(DecodeFlags.Describe(decode));
            return true;
        }
        if (!text.StartsWith("/set", StringComparison.Ordinal) || (text.Length > 4 && text[4] != ' ')) return false;
        var parts = text.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        try
        {
            if (parts.Length is < 2 or > 3 || (parts.Length == 2 && parts[1] != "greedy"))
                throw new UsageException("use /set NAME VALUE, e.g. /set beam 4, /set temperature 0.8, or /set greedy.");
            var changed = DecodeFlags.Set(decode, parts[1], parts.Length == 3 ? parts[2] : "");
            DecodeFlags.Check(changed);
            decode = changed;
            Console.WriteLine(DecodeFlags.Describe(decode));
        }
        catch (UsageException e)
        {
            Console.WriteLine("error: " + e.Message);
        }
        return true;
    }
}
