using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;

namespace Seqtalk.Cli.Commands;

/// <summary>Exit codes of <c>seqtalk</c>.</summary>
internal static class ExitCodes
{
    /// <summary>Success (also an interrupted training run whose model was saved).</summary>
    public const int Ok = 0;
    /// <summary>Bad data, bad model, training diverged, a file that cannot be read or written.</summary>
    public const int Failure = 1;
    /// <summary>Unknown option, bad option value, missing required option.</summary>
    public const int Usage = 2;
}

/// <summary>A usage error found by the CLI itself (exit code 2).</summary>
internal sealed class UsageException(string message) : Exception(message);

/// <summary>
/// Runs a command body and turns every failure into one line on stderr ("error: …") and an exit code.
/// No stack trace reaches the user unless SEQTALK_DEBUG=1 is set.
/// </summary>
internal static class CommandRunner
{
    public static bool Debug => Environment.GetEnvironmentVariable("SEQTALK_DEBUG") is "1" or "true";

    /// <summary>Runs the action of a parsed command.</summary>
    public static int Run(ParseResult parse, Func<int> body)
    {
        string hint = HelpHint(parse);
        try
        {
            return body();
        }
        catch (UsageException e)
        {
            return Fail(ExitCodes.Usage, $"{e.Message} ({hint})", e);
        }
        catch (SeqtalkException e)
        {
            return Fail(ExitCodes.Failure, e.Message, e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return Fail(ExitCodes.Failure, e.Message, e);
        }
        catch (Exception e)
        {
            if (Debug)
            {
                Console.Error.WriteLine("error: internal error:");
                Console.Error.WriteLine(e.ToString());
                return ExitCodes.Failure;
            }
            Console.Error.WriteLine($"error: internal error: {OneLine(e.Message)} (run with SEQTALK_DEBUG=1 for details)");
            return ExitCodes.Failure;
        }
    }

    /// <summary>Prints "error: message" as one line (and the exception under SEQTALK_DEBUG=1).</summary>
    public static int Fail(int exitCode, string message, Exception? e = null)
    {
        Console.Out.Flush();
        Console.Error.WriteLine("error: " + OneLine(message));
        if (Debug && e is not null) Console.Error.WriteLine(e.ToString());
        return exitCode;
    }

    /// <summary>Calls a library <c>Validate()</c> and turns its <see cref="ArgumentOutOfRangeException"/>
    /// into a usage error that names the command-line option instead of the property.</summary>
    /// <param name="validate">The record's Validate method.</param>
    /// <param name="optionNames">Property name → option name (e.g. "Epochs" → "--epochs").</param>
    public static void Validate(Action validate, IReadOnlyDictionary<string, string> optionNames)
    {
        try
        {
            validate();
        }
        catch (ArgumentOutOfRangeException e)
        {
            string name = e.ParamName is { } p && optionNames.TryGetValue(p, out var option) ? option : e.ParamName ?? "an option";
            string reason = e.Message;
            int cut = reason.IndexOf(" (Parameter", StringComparison.Ordinal);
            if (cut >= 0) reason = reason[..cut];
            string actual = e.ActualValue is IFormattable f ? f.ToString(null, CultureInfo.InvariantCulture) : e.ActualValue?.ToString() ?? "";
            reason = OneLine(reason).TrimEnd('.');
            if (reason.Length > 0) reason = char.ToLowerInvariant(reason[0]) + reason[1..];
            throw new UsageException($"invalid value '{actual}' for {name}: {reason}.");
        }
    }

    /// <summary>"run 'seqtalk train --help' for usage".</summary>
    public static string HelpHint(ParseResult parse)
    {
        var command = parse.CommandResult.Command;
        return command == parse.RootCommandResult.Command ? "run 'seqtalk --help' for usage" : $"run 'seqtalk {command.Name} --help' for usage";
    }

    /// <summary>The first parse error as one line, naming the option it is about.</summary>
    public static string DescribeParseError(ParseResult parse)
    {
        if (parse.Errors.Count == 0) return "invalid command line.";
        // "Unrecognized command or argument 'x'" says more than "Required command was not provided".
        var error = parse.Errors.FirstOrDefault(e => e.Message.StartsWith("Unrecognized", StringComparison.Ordinal)) ?? parse.Errors[0];
        string message = OneLine(error.Message)
            .Replace("as expected type 'System.Int32'", "as a whole number", StringComparison.Ordinal)
            .Replace("as expected type 'System.Nullable`1[System.Int32]'", "as a whole number", StringComparison.Ordinal)
            .Replace("as expected type 'System.Single'", "as a number", StringComparison.Ordinal)
            .Replace("as expected type 'System.Nullable`1[System.Single]'", "as a number", StringComparison.Ordinal)
            .Replace("as expected type 'System.Double'", "as a number", StringComparison.Ordinal);
        var option = error.SymbolResult switch
        {
            OptionResult o => o.Option,
            ArgumentResult { Parent: OptionResult o } => o.Option,
            _ => null,
        };
        return option is not null && !message.Contains(option.Name, StringComparison.Ordinal) ? $"{option.Name}: {message}" : message;
    }

    public static string OneLine(string text) =>
        string.Join(' ', text.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
}
