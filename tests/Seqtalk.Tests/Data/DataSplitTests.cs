using Seqtalk.Data;

namespace Seqtalk.Tests.Data;

public class DataSplitTests
{
    private static void AssertPartition(int count, List<int> train, List<int> validation)
    {
        Assert.Equal(Enumerable.Range(0, count), train.Concat(validation).Order());
        Assert.Equal(train.Order(), train);
        Assert.Equal(validation.Order(), validation);
    }

    [Theory]
    [InlineData(100, 0.2, 20)]
    [InlineData(10, 0.25, 3)]        // 2.5 rounds away from zero
    [InlineData(11_823, 0.1, 1_182)]
    [InlineData(100, 7, 7)]
    [InlineData(100, 99, 99)]
    [InlineData(100, 0, 0)]
    public void Sizes_FractionsAndCounts(int count, double size, int expected)
    {
        foreach (var mode in new[] { SplitMode.Random, SplitMode.Tail })
        {
            var (train, validation) = DataSplit.Split(count, size, mode, seed: 1);
            Assert.Equal(expected, validation.Count);
            AssertPartition(count, train, validation);
        }
    }

    [Fact]
    public void Tail_TakesTheLastRows()
    {
        var (train, validation) = DataSplit.Split(10, 0.3, SplitMode.Tail, seed: 99);
        Assert.Equal([0, 1, 2, 3, 4, 5, 6], train);
        Assert.Equal([7, 8, 9], validation);
    }

    [Fact]
    public void Random_SeededAndSpread()
    {
        var a = DataSplit.Split(1000, 0.2, SplitMode.Random, seed: 5);
        var b = DataSplit.Split(1000, 0.2, SplitMode.Random, seed: 5);
        var c = DataSplit.Split(1000, 0.2, SplitMode.Random, seed: 6);
        Assert.Equal(a.Validation, b.Validation);
        Assert.Equal(a.Train, b.Train);
        Assert.NotEqual(a.Validation, c.Validation);
        Assert.NotEqual(Enumerable.Range(800, 200), a.Validation);
        // A random sample reaches into both halves of the file.
        Assert.Contains(a.Validation, i => i < 500);
        Assert.Contains(a.Validation, i => i >= 500);
    }

    [Theory]
    [InlineData(100, 0.001, "Validation size 0.001 of 100 pairs gives an empty validation set; use a larger fraction or a number of pairs.")]
    [InlineData(100, 100, "Validation size 100 takes 100 of 100 pairs and leaves none for training; use a smaller size.")]
    [InlineData(1, 0.6, "Validation size 0.6 takes 1 of 1 pairs and leaves none for training; use a smaller size.")]
    [InlineData(100, 2.5, "Validation size 2.5 is neither a fraction below 1 nor a whole number of pairs.")]
    [InlineData(100, -0.1, "Validation size -0.1 is not valid; use a fraction below 1 (0.2 = 20%), a number of pairs, or 0 for none.")]
    [InlineData(100, double.NaN, "Validation size NaN is not valid; use a fraction below 1 (0.2 = 20%), a number of pairs, or 0 for none.")]
    public void Errors(int count, double size, string message)
    {
        var ex = Assert.Throws<SeqtalkException>(() => DataSplit.Split(count, size, SplitMode.Random, seed: 1));
        Assert.Equal(message, ex.Message);
    }
}
