using System.CommandLine;

namespace Seqtalk.Cli.Commands;

/// <summary><c>seqtalk reply --model DIR "text" …</c>: one reply line per text, decoded together.</summary>
internal static class ReplyCommand
{
    public static Command Create()
    {
        var model = SharedOptions.Model();
        var maxLength = SharedOptions.MaxLength();
        var texts = new Argument<string[]>("text") { Description = "Questions to reply to; each gets one reply line, in order.", Arity = ArgumentArity.OneOrMore };

        var command = new Command("reply", "Reply to one or more questions.") { model, maxLength, texts };
        command.SetAction(parse => CommandRunner.Run(parse, () =>
        {
            var decode = SharedOptions.ToDecodeOptions(parse.GetValue(maxLength));
            var chat = ChatModel.Load(parse.GetValue(model)!);
            var questions = parse.GetValue(texts)!;
            foreach (var reply in chat.ReplyBatch(questions, decode)) Console.WriteLine(CommandRunner.OneLine(reply));
            return ExitCodes.Ok;
        }));
        return command;
    }
}
