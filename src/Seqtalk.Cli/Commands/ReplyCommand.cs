using System.CommandLine;

namespace Seqtalk.Cli.Commands;

/// <summary><c>seqtalk reply --model DIR "text" …</c>: one reply line per text, decoded together; with --nbest N
/// above 1, N tab-separated candidate lines per text (question, rank, score, log-probability, text).</summary>
internal static class ReplyCommand
{
    public static Command Create()
    {
        var model = SharedOptions.Model();
        var decodeFlags = new DecodeFlags();
        var texts = new Argument<string[]>("text") { Description = "Questions to reply to; each gets one reply line, in order.", Arity = ArgumentArity.OneOrMore };

        var command = new Command("reply", "Reply to one or more questions.") { model };
        decodeFlags.AddTo(command);
        command.Arguments.Add(texts);
        command.SetAction(parse => CommandRunner.Run(parse, () =>
        {
            var decode = decodeFlags.Read(parse);
            var chat = ChatModel.Load(parse.GetValue(model)!);
            DecodeFlags.Print(chat, parse.GetValue(texts)!, decode, Console.Out);
            return ExitCodes.Ok;
        }));
        return command;
    }
}
