<#
.SYNOPSIS
Installs, upgrades and configures OutSystems 11 on one VM or scale-set instance.

.DESCRIPTION
Outsystems.SetupTools 4.0.3.0 (tests/oracles/setuptools-4.0.3.0.json); secrets from Key Vault.
Modes, exit codes (0, 1, 3010) and last lines: docs/upgrades.md.
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory)][ValidateSet('controller', 'frontend', 'standalone', 'lifetime')][string]$Role,
    [Parameter(Mandatory)][ValidatePattern('^11\.\d+\.\d+(\.\d+)?$')][string]$PlatformVersion,
    [Parameter(Mandatory)][ValidatePattern('^11\.\d+\.\d+(\.\d+)?$')][string]$LifetimeVersion,
    [Parameter(Mandatory)][string]$DatabaseServer,
    [Parameter(Mandatory)][string]$PlatformCatalog,
    [Parameter(Mandatory)][string]$SessionCatalog,
    [Parameter(Mandatory)][string]$LoggingCatalog,
    [Parameter(Mandatory)][string]$DatabaseAdminUser,
    [Parameter(Mandatory)][string]$ControllerAddress,
    [Parameter(Mandatory)][ValidatePattern('^https://[^/\s]+/$')][string]$KeyVaultUri,
    [Parameter(Mandatory)][ValidatePattern('^[0-9A-Za-z-]{1,127}$')][string]$DatabaseAdminPasswordSecret,
    [Parameter(Mandatory)][ValidatePattern('^[0-9A-Za-z-]{1,127}$')][string]$PrivateKeySecret,
    [Parameter(Mandatory)][ValidatePattern('^[0-9A-Za-z-]{1,127}$')][string]$AdminPasswordSecret,
    [Parameter(Mandatory)][ValidatePattern('^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.ManagedIdentity/userAssignedIdentities/[^/]+$')][string]$IdentityResourceId,
    [Parameter(Mandatory)][ValidatePattern('^[a-z0-9]{3,24}$')][string]$StorageAccount,
    [Parameter(Mandatory)][string]$FileShare,
    [Parameter(Mandatory)][ValidatePattern('^\d{1,3}(\.\d{1,3}){3}/\d{1,2}(,\d{1,3}(\.\d{1,3}){3}/\d{1,2})*$')][string]$TrustedProxyAddresses,
    # Setup, Upgrade: the extension; Resume, WatchTermination: tasks; the rest: Run Command.
    [Parameter()][ValidateSet('Setup', 'Upgrade', 'Resume', 'WatchTermination', 'Drain', 'HoldDeployments', 'Serve')][string]$Mode = 'Setup'
)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
# SetupTools writes setting values to these streams: keep them out of the transcript.
$VerbosePreference = 'SilentlyContinue'
$DebugPreference = 'SilentlyContinue'
$InformationPreference = 'SilentlyContinue'
[Net.ServicePointManager]::SecurityProtocol = [Net.ServicePointManager]::SecurityProtocol -bor [Net.SecurityProtocolType]::Tls12

$SetupToolsVersion = '4.0.3.0'
$StateDir = Join-Path $env:ProgramData 'OutSystemsSetup'
$StateFile = Join-Path $StateDir 'state.json'
$LogDir = Join-Path $StateDir 'logs'
$Stamp = '{0:yyyyMMddTHHmmssZ}' -f (Get-Date).ToUniversalTime()
$ModuleLog = "setuptools-$Stamp.log"
$DataVolumeLabel = 'OutSystems'
$Computer = $env:COMPUTERNAME.ToLowerInvariant()
$ImdsBase = 'http://169.254.169.254/metadata'
$ResumeTask = 'OutSystemsSetupResume'
$RebootTask = 'OutSystemsSetupReboot'
$WatchTask = 'OutSystemsScaleInWatch'
$DrainRule = 'OutSystems-Draining'
# SetupTools Lib/Constants.ps1 ($OSServices).
$SchedulerService = 'OutSystems Scheduler Service'
$DeploymentService = 'OutSystems Deployment Service'
# The gateways' probe (outsystems/topology.py).
$HealthPath = '/servicecenter/_ping.aspx'
$HealthWaitMinutes = 10
# Custom Script Extension: 90 minutes per run, no restart inside the script.
$RunBudgetMinutes = 80
$LockWaitMinutes = 60
$ControllerWaitMinutes = 20
$MaxReboots = 3
$Started = Get-Date
$IsFrontend = $Role -eq 'frontend'
$HostsServiceCenter = -not $IsFrontend
# LifeTime's installer bundles its Platform Server.
$Product, $TargetVersion = if ($Role -eq 'lifetime') { 'LifeTime', $LifetimeVersion } else { 'Platform Server', $PlatformVersion }
$Outcome = ''
$Pending = 'continuing in the background'
$Secrets = New-Object System.Collections.Generic.List[string]
$ScriptArguments = @{}
foreach ($name in $PSBoundParameters.Keys) { $ScriptArguments[$name] = $PSBoundParameters[$name] }
$DatabaseAdminPassword = $null
$PrivateKey = $null
$AdminPassword = $null

#region helpers

function Write-Step([string]$Message) {
    # The host stream reaches the transcript and the output, never a return value.
    Write-Host ('[{0:u}] {1}' -f (Get-Date).ToUniversalTime(), $Message)
}

function Read-SetupState {
    $state = @{}
    if (Test-Path -LiteralPath $StateFile) {
        $json = Get-Content -LiteralPath $StateFile -Raw | ConvertFrom-Json
        foreach ($property in $json.PSObject.Properties) { $state[$property.Name] = [string]$property.Value }
    }
    return $state
}

function Save-SetupState([hashtable]$State) {
    $State | ConvertTo-Json | Set-Content -LiteralPath $StateFile -Encoding UTF8
}

function Get-HttpStatus([System.Management.Automation.ErrorRecord]$ErrorRecord) {
    $response = $ErrorRecord.Exception.PSObject.Properties['Response']
    if ($response -and $response.Value) { return [int]$response.Value.StatusCode }
    return 0
}

function Invoke-Imds([string]$Path, [string]$Method = 'Get', [string]$Body) {
    # IMDS asks callers to retry 404 (identity), 410, 429 and 5xx answers.
    for ($attempt = 1; ; $attempt++) {
        try {
            $arguments = @{ Uri = "$ImdsBase/$Path"; Method = $Method; Headers = @{ Metadata = 'true' }; TimeoutSec = 15; UseBasicParsing = $true }
            if ($Body) { $arguments['Body'] = $Body; $arguments['ContentType'] = 'application/json' }
            return Invoke-RestMethod @arguments
        }
        catch {
            $status = Get-HttpStatus $_
            if ($attempt -ge 6 -or ($status -ne 0 -and $status -notin 404, 410, 429 -and $status -lt 500)) { throw }
            Start-Sleep -Seconds (5 * $attempt)
        }
    }
}

function Get-AccessToken([string]$Resource) {
    $query = 'identity/oauth2/token?api-version=2018-02-01&resource={0}&mi_res_id={1}' -f [uri]::EscapeDataString($Resource), [uri]::EscapeDataString($IdentityResourceId)
    try {
        return (Invoke-Imds $query).access_token
    }
    catch {
        throw "no managed identity token from IMDS for $Resource (identity $IdentityResourceId): $($_.Exception.Message)"
    }
}

function Get-VaultSecret([string]$Name, [string]$Token) {
    try {
        $secret = Invoke-RestMethod -Uri "$($KeyVaultUri)secrets/$($Name)?api-version=7.4" -Headers @{ Authorization = "Bearer $Token" } -UseBasicParsing -TimeoutSec 30
    }
    catch {
        throw "Key Vault secret '$Name' is not readable in $KeyVaultUri (HTTP $(Get-HttpStatus $_))"
    }
    if (-not $secret.value) { throw "Key Vault secret '$Name' in $KeyVaultUri is empty" }
    $Secrets.Add([string]$secret.value)
    return [string]$secret.value
}

function Test-PrivateKeyFormat([string]$Key) {
    try { return ([Convert]::FromBase64String($Key)).Length -eq 16 }
    catch [System.FormatException] { return $false }
}

function Get-KeyedHash([string]$Text) {
    $hmac = New-Object System.Security.Cryptography.HMACSHA256 (, [Convert]::FromBase64String($PrivateKey))
    try { return $hmac.ComputeHash([Text.Encoding]::UTF8.GetBytes($Text)) }
    finally { $hmac.Dispose() }
}

# Passwords of the OutSystems database and RabbitMQ users, derived from the private key: the same
# on every server, stable across re-runs, no new exposure (private.key decrypts server.hsconf).
function Get-DerivedSecret([string]$Purpose) {
    $text = [Convert]::ToBase64String((Get-KeyedHash "outsystems-setup/v1/$Purpose")).TrimEnd('=').Replace('+', 'x').Replace('/', 'y')
    # The prefix meets Azure SQL's complexity rule; RabbitMQ accepts '!'.
    $value = 'Os1!' + $text.Substring(0, 28)
    if (-not $Secrets.Contains($value)) { $Secrets.Add($value) }
    return $value
}

function Get-Fingerprint([string[]]$Values) {
    return ([BitConverter]::ToString((Get-KeyedHash ($Values -join "`n")))).Replace('-', '')
}

function Test-TcpPort([string]$HostName, [int]$Port, [int]$TimeoutMs = 5000) {
    $client = New-Object System.Net.Sockets.TcpClient
    try {
        $connect = $client.BeginConnect($HostName, $Port, $null, $null)
        return ($connect.AsyncWaitHandle.WaitOne($TimeoutMs) -and $client.Connected)
    }
    catch { return $false }
    finally { $client.Close() }
}

function Invoke-SqlScalar([string]$Catalog, [string]$Query, [hashtable]$Parameters = @{}) {
    $builder = New-Object System.Data.SqlClient.SqlConnectionStringBuilder
    $builder['Data Source'] = "tcp:$DatabaseServer,1433"
    $builder['Initial Catalog'] = $Catalog
    $builder['User ID'] = $DatabaseAdminUser
    $builder['Password'] = $DatabaseAdminPassword
    $builder['Encrypt'] = $true
    $builder['Connect Timeout'] = 30
    $connection = New-Object System.Data.SqlClient.SqlConnection $builder.ConnectionString
    try {
        $connection.Open()
        $command = $connection.CreateCommand()
        $command.CommandText = $Query
        foreach ($name in $Parameters.Keys) { [void]$command.Parameters.AddWithValue($name, $Parameters[$name]) }
        return $command.ExecuteScalar()
    }
    finally { $connection.Dispose() }
}

function Get-ShareUri([string]$Path) {
    return "https://$StorageAccount.file.core.windows.net/$FileShare/$Path"
}

function Get-ShareHeaders {
    # OAuth on the Files REST API needs the backup intent header.
    return @{
        Authorization              = "Bearer $(Get-AccessToken 'https://storage.azure.com/')"
        'x-ms-version'             = '2023-11-03'
        'x-ms-file-request-intent' = 'backup'
    }
}

function New-ShareDirectory([string]$Path, [hashtable]$Headers) {
    try {
        Invoke-RestMethod -Method Put -Uri "$(Get-ShareUri $Path)?restype=directory" -Headers $Headers -Body '' -UseBasicParsing | Out-Null
    }
    catch {
        # 409: the directory exists already.
        if ((Get-HttpStatus $_) -ne 409) { throw }
    }
}

function Send-ShareFile([byte[]]$Bytes, [string]$Path, [hashtable]$Headers) {
    $uri = Get-ShareUri $Path
    Invoke-RestMethod -Method Put -Uri $uri -Headers ($Headers + @{ 'x-ms-type' = 'file'; 'x-ms-content-length' = "$($Bytes.Length)" }) -Body '' -UseBasicParsing | Out-Null
    $chunk = 4 * 1024 * 1024
    for ($offset = 0; $offset -lt $Bytes.Length; $offset += $chunk) {
        $count = [Math]::Min($chunk, $Bytes.Length - $offset)
        $body = New-Object byte[] $count
        [Array]::Copy($Bytes, $offset, $body, 0, $count)
        $range = @{ 'x-ms-range' = "bytes=$offset-$($offset + $count - 1)"; 'x-ms-write' = 'update' }
        Invoke-RestMethod -Method Put -Uri "$($uri)?comp=range" -Headers ($Headers + $range) -Body $body -ContentType 'application/octet-stream' -UseBasicParsing | Out-Null
    }
}

function Protect-Text([string]$Text) {
    # Longest first, so that a secret containing another is replaced whole.
    foreach ($value in ($Secrets | Sort-Object -Property Length -Descending)) {
        if ($value) { $Text = $Text.Replace($value, '[redacted]') }
    }
    return $Text
}

function Get-ProtectedHsconf([string]$Path) {
    # server.hsconf holds passwords in clear until the configuration tool encrypts them.
    [xml]$document = Get-Content -LiteralPath $Path -Raw
    foreach ($node in @($document.SelectNodes('//*[contains(local-name(), "Password")]'))) { $node.InnerText = '[redacted]' }
    $writer = New-Object System.IO.StringWriter
    $document.Save($writer)
    return Protect-Text $writer.ToString()
}

function Get-InstallDir {
    # The data disk is found by its label, not by a letter (a DVD drive may hold any letter).
    $volume = Get-Volume -FileSystemLabel $DataVolumeLabel -ErrorAction SilentlyContinue | Where-Object { $_.DriveLetter } | Select-Object -First 1
    if ($volume) { return "$($volume.DriveLetter):\OutSystems" }
    return (Join-Path $env:ProgramFiles 'OutSystems')
}

function Get-ScriptArguments([string]$NextMode) {
    # The continuation runs this same file with the same (non-secret) arguments.
    $list = foreach ($name in $ScriptArguments.Keys) {
        if ($name -ne 'Mode') { "-$name '$(([string]$ScriptArguments[$name]).Replace("'", "''"))'" }
    }
    return "-NoProfile -NonInteractive -ExecutionPolicy Bypass -Command `"& '$PSCommandPath' $($list -join ' ') -Mode $NextMode; exit `$LASTEXITCODE`""
}

function Register-SystemTask([string]$Name, [object[]]$Triggers, [string]$Arguments, [timespan]$Limit) {
    $action = New-ScheduledTaskAction -Execute "$env:SystemRoot\System32\WindowsPowerShell\v1.0\powershell.exe" -Argument $Arguments
    $principal = New-ScheduledTaskPrincipal -UserId 'SYSTEM' -LogonType ServiceAccount -RunLevel Highest
    $settings = New-ScheduledTaskSettingsSet -ExecutionTimeLimit $Limit -RestartCount 3 -RestartInterval (New-TimeSpan -Minutes 1) -StartWhenAvailable
    Register-ScheduledTask -TaskName $Name -Action $action -Trigger $Triggers -Principal $principal -Settings $settings -Force | Out-Null
}

function Unregister-SystemTask([string]$Name) {
    if (Get-ScheduledTask -TaskName $Name -ErrorAction SilentlyContinue) {
        Unregister-ScheduledTask -TaskName $Name -Confirm:$false
    }
}

#endregion

#region reboot and hand-off

function Request-Continuation([hashtable]$State, [string]$Reason, [switch]$Reboot) {
    $triggers = @(New-ScheduledTaskTrigger -AtStartup)
    if (-not $Reboot) { $triggers += New-ScheduledTaskTrigger -Once -At (Get-Date).AddMinutes(1) }
    Register-SystemTask $ResumeTask $triggers (Get-ScriptArguments 'Resume') (New-TimeSpan -Hours 4)
    if ($Reboot) {
        $State['reboots'] = [string]([int]('0' + $State['reboots']) + 1)
        if ([int]$State['reboots'] -gt $MaxReboots) { throw "Windows asked for more than $MaxReboots reboots; giving up." }
        # No restart inside the extension: a task restarts the VM once this run has reported.
        $State['rebootRequestedAt'] = (Get-Date).ToUniversalTime().ToString('o')
        Register-SystemTask $RebootTask @(New-ScheduledTaskTrigger -Once -At (Get-Date).AddMinutes(3)) "-NoProfile -Command `"shutdown.exe /r /t 0 /d p:4:2 /c 'OutSystems setup'`"" (New-TimeSpan -Minutes 10)
    }
    Save-SetupState $State
    $script:Pending = "$(if ($Reboot) { 'reboot pending' } else { 'continuing in the background' }) ($Reason)"
    Write-Step "Continuation: task $ResumeTask finishes the setup; $Pending"
    return 3010
}

function Test-RunBudget([hashtable]$State, [string]$NextStep, [int]$Minutes) {
    # A step that may not end inside the extension's run goes to the background task instead.
    if ($Mode -ne 'Resume' -and ((Get-Date) - $Started).TotalMinutes + $Minutes -gt $RunBudgetMinutes) {
        return (Request-Continuation $State "'$NextStep' may not end within the extension's 90 minutes")
    }
    return 0
}

function Enter-SetupLock {
    # One setup at a time: the extension's run and the continuation task share this lock.
    $mutex = New-Object System.Threading.Mutex ($false, 'Global\OutSystemsSetup')
    $wait = if ($Mode -ne 'Resume') { [timespan]::FromMinutes($LockWaitMinutes) } else { [timespan]::FromHours(4) }
    try {
        if (-not $mutex.WaitOne($wait)) { $mutex.Dispose(); return $null }
    }
    catch [System.Threading.AbandonedMutexException] {
        Write-Step 'Lock: the previous setup run ended without releasing the lock'
    }
    return $mutex
}

#endregion

#region steps

function Invoke-Preflight {
    $missing = New-Object System.Collections.Generic.List[string]
    try {
        $token = Get-AccessToken 'https://vault.azure.net'
        $names = @(('db', $DatabaseAdminPasswordSecret), ('key', $PrivateKeySecret))
        # Front-ends never use the admin password.
        if ($HostsServiceCenter) { $names += , @('admin', $AdminPasswordSecret) }
        foreach ($pair in $names) {
            try {
                $value = Get-VaultSecret $pair[1] $token
                switch ($pair[0]) {
                    'db' { $script:DatabaseAdminPassword = $value }
                    'key' { $script:PrivateKey = $value.Trim() }
                    'admin' { $script:AdminPassword = $value }
                }
            }
            catch { $missing.Add($_.Exception.Message) }
        }
    }
    catch { $missing.Add($_.Exception.Message) }
    if ($PrivateKey -and -not (Test-PrivateKeyFormat $PrivateKey)) {
        $missing.Add("Key Vault secret '$PrivateKeySecret' is not the base64 text of 16 bytes")
    }
    try {
        $headers = Get-ShareHeaders
        New-ShareDirectory $Computer $headers
        $probe = "$Computer/preflight.txt"
        Send-ShareFile ([Text.Encoding]::UTF8.GetBytes((Get-Date).ToUniversalTime().ToString('o'))) $probe $headers
        Invoke-RestMethod -Method Delete -Uri (Get-ShareUri $probe) -Headers $headers -UseBasicParsing | Out-Null
    }
    catch {
        $detail = if ($_.Exception.Message -like 'no managed identity token*') { $_.Exception.Message } else { "HTTP $(Get-HttpStatus $_)" }
        $missing.Add("file share $StorageAccount/$FileShare is not writable with the managed identity ($detail)")
    }
    if (-not (Test-TcpPort $DatabaseServer 1433)) {
        $missing.Add("SQL server $DatabaseServer is not reachable on TCP 1433")
    }
    elseif ($DatabaseAdminPassword) {
        try { [void](Invoke-SqlScalar $PlatformCatalog 'SELECT 1') }
        catch { $missing.Add("SQL login $DatabaseAdminUser to $DatabaseServer/$PlatformCatalog failed: $($_.Exception.Message)") }
    }
    if (-not (Get-Module -ListAvailable -Name 'Outsystems.SetupTools' | Where-Object { $_.Version -eq [version]$SetupToolsVersion })) {
        if (-not (Test-TcpPort 'www.powershellgallery.com' 443)) {
            $missing.Add('the PowerShell Gallery (www.powershellgallery.com:443) is not reachable')
        }
    }
    if ($missing.Count -gt 0) { throw "Preflight: $($missing -join '; ')" }
    Write-Step 'Preflight: Key Vault secrets, file share, SQL and PowerShell Gallery reachable'
}

function Initialize-DataDisk {
    # Only a raw disk is touched: a re-run cannot format data.
    $raw = @(Get-Disk | Where-Object { $_.PartitionStyle -eq 'RAW' -and $_.OperationalStatus -eq 'Online' })
    if ($raw.Count -eq 0 -or (Get-Volume -FileSystemLabel $DataVolumeLabel -ErrorAction SilentlyContinue)) { return }
    Write-Step "Data disk: initializing disk $($raw[0].Number) as the OutSystems volume"
    $raw[0] | Initialize-Disk -PartitionStyle GPT -PassThru | New-Partition -UseMaximumSize -AssignDriveLetter |
        Format-Volume -FileSystem NTFS -NewFileSystemLabel $DataVolumeLabel -Confirm:$false | Out-Null
}

function Import-SetupTools {
    if (-not (Get-Module -ListAvailable -Name 'Outsystems.SetupTools' | Where-Object { $_.Version -eq [version]$SetupToolsVersion })) {
        Write-Step "Installing Outsystems.SetupTools $SetupToolsVersion from the PowerShell Gallery"
        if (-not (Get-PackageProvider -ListAvailable -Name NuGet -ErrorAction SilentlyContinue)) {
            Install-PackageProvider -Name NuGet -MinimumVersion 2.8.5.201 -Force | Out-Null
        }
        Install-Module -Name 'Outsystems.SetupTools' -RequiredVersion $SetupToolsVersion -Repository PSGallery -Force -Scope AllUsers
    }
    # First module argument: telemetry off (its events carry the invocation of each cmdlet).
    Import-Module -Name 'Outsystems.SetupTools' -RequiredVersion $SetupToolsVersion -ArgumentList $false -Force
    Set-OSInstallLog -Path $LogDir -File $ModuleLog
}

function Resolve-OSVersion([string]$Requested, [string]$Application) {
    if ($Requested -match '^\d+\.\d+\.\d+\.\d+$') { return $Requested }
    $candidates = @(Get-OSRepoAvailableVersions -MajorVersion '11' -Application $Application -ErrorAction Stop |
            Where-Object { "$_".StartsWith("$Requested.") } | Sort-Object { [version]"$_" } -Descending)
    if ($candidates.Count -eq 0) {
        throw "Preflight: the OutSystems repository lists no $Application build of $Requested (Get-OSRepoAvailableVersions); is outbound Internet access open?"
    }
    return [string]$candidates[0]
}

function Install-Prerequisites([hashtable]$State) {
    $target = [version]($PlatformVersion.Split('.')[0..2] -join '.')
    if ($State['prereqs'] -eq "$target") { return 0 }
    Write-Step "Prerequisites: checks, IIS, .NET and hosting bundles for $target"
    Test-OSServerHardwareReqs -MajorVersion '11' -ErrorAction Stop | Out-Null
    Test-OSServerSoftwareReqs -MajorVersion '11' -ErrorAction Stop | Out-Null
    # MinorVersion/PatchVersion pick the hosting bundle (.NET 8 from 11.27 in the 4.0 line).
    $result = Install-OSServerPreReqs -MajorVersion '11' -MinorVersion "$($target.Minor)" -PatchVersion "$($target.Build)" -InstallIISMgmtConsole:$false -ErrorAction Stop
    if (-not $result.Success) { throw "Prerequisites failed: $($result.Message)" }
    if ($result.RebootNeeded) { return (Request-Continuation $State 'the prerequisites need a reboot' -Reboot) }
    $State['prereqs'] = "$target"
    Save-SetupState $State
    return 0
}

function Get-InstalledVersion {
    # What Install-OSServer compares (SetupTools Lib/PlatformSetup.ps1); Get-OSServerInfo would
    # log the private key's end.
    $name = if ($Role -eq 'lifetime') { 'LifeTime' } else { 'Server' }
    $key = Get-ItemProperty -LiteralPath 'HKLM:\SOFTWARE\OutSystems\Installer\Server' -ErrorAction SilentlyContinue
    if ($key -and $key.PSObject.Properties[$name]) { return [string]$key.$name }
}

function Compare-InstalledVersion {
    # -1 older, 0 the request (any build of a three-part one), 1 newer, $null none.
    $installed = Get-InstalledVersion
    if ($installed) { return ([version](($installed.Split('.') | Select-Object -First ($TargetVersion.Split('.').Count)) -join '.')).CompareTo([version]$TargetVersion) }
}

function Confirm-TargetVersion([hashtable]$State) {
    # upgrade-platform.md: the new installer over the old (Install-OSServer, in place); no downgrade.
    $order = Compare-InstalledVersion
    if ($null -eq $order) {
        if ($Mode -eq 'Upgrade') { throw "nothing to upgrade: $Product is not installed" }
        $State['freshInstall'] = '1'
    }
    elseif ($order -gt 0) { throw "downgrade refused: $Product $(Get-InstalledVersion) is installed, $TargetVersion was requested" }
    elseif ($order -lt 0 -and -not $State['upgradeFrom']) { $State['upgradeFrom'] = Get-InstalledVersion }
    Save-SetupState $State
}

function Install-PlatformServer([hashtable]$State, [string]$InstallDir) {
    if ((Compare-InstalledVersion) -eq 0) { return 0 }
    $version = Resolve-OSVersion $TargetVersion $(if ($Role -eq 'lifetime') { 'Lifetime' } else { 'PlatformServer' })
    Write-Step "$($Product): installing $version"
    # Since SetupTools 3.19.0.0 RabbitMQ comes with the configuration, not the installer.
    $result = Install-OSServer -InstallDir $InstallDir -Version $version -WithLifetime:($Role -eq 'lifetime') -ErrorAction Stop
    if (-not $result.Success) { throw "$Product installation failed: $($result.Message)" }
    if ($result.RebootNeeded) { return (Request-Continuation $State "the $Product installer needs a reboot" -Reboot) }
    return 0
}

function Disable-DeploymentControllerOnFrontend {
    # A farm front-end uses the controller's Deployment Controller Service.
    $service = Get-Service -Name 'OutSystems Deployment Controller Service' -ErrorAction SilentlyContinue
    if ($service -and $service.StartType -ne 'Disabled') {
        Write-Step 'Front-end: disabling the local Deployment Controller Service'
        $service | Stop-Service -Force -WarningAction SilentlyContinue
        Set-Service -Name $service.Name -StartupType Disabled
    }
}

function Set-PrivateKeyFile([string]$OSInstallDir) {
    $path = Join-Path $OSInstallDir 'private.key'
    if (Test-Path -LiteralPath $path) {
        $current = @(Get-Content -LiteralPath $path | Where-Object { $_ -and -not $_.StartsWith('--') })
        if ($current.Count -gt 0 -and $current[-1].Trim() -eq $PrivateKey) { return }
        if ($current.Count -gt 0 -and (Test-Path -LiteralPath (Join-Path $OSInstallDir 'server.hsconf'))) {
            throw 'private.key holds a different key than the Key Vault secret; refusing to replace it on a configured server.'
        }
    }
    Write-Step 'Private key: writing private.key'
    Set-Content -LiteralPath $path -Encoding ASCII -Value @('--This file holds the private encryption key of this OutSystems environment. Confidential.', $PrivateKey)
}

function Set-HsconfValues([string]$OSInstallDir, [System.Collections.Specialized.OrderedDictionary]$Values) {
    # Secrets bypass Set-OSServerConfig, which logs what it sets; the configuration tool encrypts them.
    $path = Join-Path $OSInstallDir 'server.hsconf'
    [xml]$document = Get-Content -LiteralPath $path -Raw
    $root = $document.DocumentElement
    foreach ($key in $Values.Keys) {
        $sectionName, $settingName = $key.Split('/')
        $section = $root.SelectSingleNode($sectionName)
        if (-not $section) { $section = $root.AppendChild($document.CreateElement($sectionName)) }
        $setting = $section.SelectSingleNode($settingName)
        if (-not $setting) { $setting = $section.AppendChild($document.CreateElement($settingName)) }
        $setting.InnerText = [string]$Values[$key]
        if ($setting.Attributes['encrypted']) { $setting.SetAttribute('encrypted', 'false') }
    }
    $document.Save($path)
}

function Wait-Controller {
    # 12000 and 5672: the only front-end -> controller ports; both answer once the controller is
    # configured, which it is before the scale set exists.
    $deadline = (Get-Date).AddMinutes($ControllerWaitMinutes)
    while (-not ((Test-TcpPort $ControllerAddress 12000) -and (Test-TcpPort $ControllerAddress 5672))) {
        if ((Get-Date) -gt $deadline) {
            throw "the controller $ControllerAddress did not answer on TCP 12000 and 5672 within $ControllerWaitMinutes minutes"
        }
        Write-Step "Front-end: waiting for the controller $ControllerAddress (TCP 12000, 5672)"
        Start-Sleep -Seconds 30
    }
}

function Invoke-ServerConfiguration([hashtable]$State) {
    $osInstallDir = Get-OSServerInstallDir -ErrorAction Stop
    $serverVersion = Get-OSServerVersion -ErrorAction Stop
    $users = @{ admin = 'OSADMIN'; runtime = 'OSRUNTIME'; session = 'OSSTATE'; logAdmin = 'OSADMIN_LOG'; logRuntime = 'OSRUNTIME_LOG'; rabbit = 'outsystems' }
    $plain = [ordered]@{
        'PlatformDatabaseConfiguration/UsedAuthenticationMode' = 'Database Authentication'
        'PlatformDatabaseConfiguration/Server' = $DatabaseServer
        'PlatformDatabaseConfiguration/Catalog' = $PlatformCatalog
        'PlatformDatabaseConfiguration/AdminUser' = $users.admin
        'PlatformDatabaseConfiguration/RuntimeUser' = $users.runtime
        'SessionDatabaseConfiguration/UsedAuthenticationMode' = 'Database Authentication'
        'SessionDatabaseConfiguration/Server' = $DatabaseServer
        'SessionDatabaseConfiguration/Catalog' = $SessionCatalog
        'SessionDatabaseConfiguration/SessionUser' = $users.session
        'LoggingDatabaseConfiguration/UsedAuthenticationMode' = 'Database Authentication'
        'LoggingDatabaseConfiguration/Server' = $DatabaseServer
        'LoggingDatabaseConfiguration/Catalog' = $LoggingCatalog
        'LoggingDatabaseConfiguration/AdminUser' = $users.logAdmin
        'LoggingDatabaseConfiguration/RuntimeUser' = $users.logRuntime
        'ServiceConfiguration/CompilerServerHostname' = $ControllerAddress
        'CacheInvalidationConfiguration/ServiceHost' = $ControllerAddress
        'CacheInvalidationConfiguration/ServicePort' = '5672'
        'CacheInvalidationConfiguration/ServiceUsername' = $users.rabbit
        'CacheInvalidationConfiguration/VirtualHost' = '/OutSystems'
        'OtherConfigurations/DBTimeout' = '60'
    }
    $secret = [ordered]@{
        'PlatformDatabaseConfiguration/AdminPassword' = Get-DerivedSecret $users.admin
        'PlatformDatabaseConfiguration/RuntimePassword' = Get-DerivedSecret $users.runtime
        'SessionDatabaseConfiguration/SessionPassword' = Get-DerivedSecret $users.session
        'LoggingDatabaseConfiguration/AdminPassword' = Get-DerivedSecret $users.logAdmin
        'LoggingDatabaseConfiguration/RuntimePassword' = Get-DerivedSecret $users.logRuntime
        'CacheInvalidationConfiguration/ServicePassword' = Get-DerivedSecret $users.rabbit
    }
    # The applied file is encrypted: a keyed fingerprint of the inputs says whether it is current.
    $inputs = @($Role, $serverVersion, $DatabaseAdminUser, $DatabaseAdminPassword)
    foreach ($values in @($plain, $secret)) { foreach ($key in $values.Keys) { $inputs += "$key=$($values[$key])" } }
    $fingerprint = Get-Fingerprint $inputs
    $hsconf = Join-Path $osInstallDir 'server.hsconf'
    if ($State['configuration'] -eq $fingerprint -and (Test-Path -LiteralPath $hsconf)) { return }

    if (-not (Test-Path -LiteralPath $hsconf)) {
        Write-Step 'Configuration: creating server.hsconf for SQL Server'
        New-OSServerConfig -DatabaseProvider 'SQL' -PrivateKey $PrivateKey -Force -ErrorAction Stop | Out-Null
    }
    Set-PrivateKeyFile $osInstallDir
    Write-Step "Configuration: database $DatabaseServer ($PlatformCatalog, $SessionCatalog, $LoggingCatalog), controller $ControllerAddress"
    foreach ($key in $plain.Keys) {
        $sectionName, $settingName = $key.Split('/')
        Set-OSServerConfig -SettingSection $sectionName -Setting $settingName -Value $plain[$key] -ErrorAction Stop | Out-Null
    }
    Set-HsconfValues $osInstallDir $secret

    if ($IsFrontend) { Wait-Controller }
    $credential = New-Object System.Management.Automation.PSCredential ($DatabaseAdminUser, (ConvertTo-SecureString -String $DatabaseAdminPassword -AsPlainText -Force))
    # LogDBCredential and ConfigureCacheInvalidationService exist once Platform Server is installed.
    $apply = @{ Apply = $true; PlatformDBCredential = $credential; SessionDBCredential = $credential; LogDBCredential = $credential; ErrorAction = 'Stop' }
    if ($IsFrontend) {
        # The controller built the session catalog.
        $apply['SkipSessionRebuild'] = $true
    }
    else {
        # /CreateUpgradeCacheInvalidationService installs or reconfigures RabbitMQ and Erlang.
        $apply['ConfigureCacheInvalidationService'] = $true
    }
    # config-tool-ref.md, upgrade from OutSystems 11: /UpgradeEnvironment publishes Service Center
    # and System Components and starts the modules preparation (upgrade-platform.md's "Apply and
    # Exit"); SetupTools' /SetupInstall "creates or upgrades" the models.
    $upgrade = $HostsServiceCenter -and ($State['upgradeFrom'] -or ($State['systemComponents'] -and $State['systemComponents'] -ne $serverVersion))
    if ($upgrade) { $apply['UpgradeEnvironment'] = $true }
    Write-Step "Configuration: applying$(if ($upgrade) { ' with the environment upgrade' })"
    Set-OSServerConfig @apply | Out-Null
    if ($upgrade) {
        # Publish-OSPlatformLifetime wants Service Center flagged at this version (skips if so).
        Install-OSPlatformServiceCenter -ErrorAction Stop | Out-Null
        $State['systemComponents'] = $serverVersion
    }
    $State['configuration'] = $fingerprint
    Save-SetupState $State
}

function Invoke-ConfigurationTool([string[]]$Arguments, [string]$What) {
    $tool = Join-Path (Get-OSServerInstallDir -ErrorAction Stop) 'ConfigurationTool.com'
    # Windows PowerShell turns a native tool's stderr into terminating errors under 'Stop'.
    $ErrorActionPreference = 'Continue'
    $output = & $tool @Arguments 2>&1
    if ($LASTEXITCODE -ne 0) {
        throw "Configuration Tool $What failed (exit $LASTEXITCODE): $(Protect-Text (($output | Select-Object -Last 3) -join ' '))"
    }
}

function Set-AdminPassword {
    # Every run: Key Vault stays the one truth (rotation: change the secret, apply the extension).
    if (-not $HostsServiceCenter) { return }
    Write-Step 'Admin password: setting it from Key Vault'
    Invoke-ConfigurationTool @('/SetPlatformServerAdminPassword', $AdminPassword) '/SetPlatformServerAdminPassword'
}

function Get-AdminCredential {
    return New-Object System.Management.Automation.PSCredential ('admin', (ConvertTo-SecureString -String $AdminPassword -AsPlainText -Force))
}

function Set-TlsOffloading {
    # OutSystems' reverse proxy guide, SSL offloading: the gateway sends X-Forwarded-Proto.
    if (-not $HostsServiceCenter) { return }
    $name = 'OutSystems.HubEdition.HTTPtoHTTPSproxyHeader'
    $value = 'X-Forwarded-Proto: https'
    $current = Invoke-SqlScalar $PlatformCatalog 'SELECT Val FROM OSSYS_PARAMETER WHERE Name = @name' @{ '@name' = $name }
    if ($current -eq $value) { return }
    Write-Step "TLS offloading: setting $name"
    [void](Invoke-SqlScalar $PlatformCatalog 'IF EXISTS (SELECT 1 FROM OSSYS_PARAMETER WHERE Name = @name) UPDATE OSSYS_PARAMETER SET Val = @value WHERE Name = @name ELSE INSERT INTO OSSYS_PARAMETER (Name, Val) VALUES (@name, @value)' @{ '@name' = $name; '@value' = $value })
    # The guide asks for a restart of the OutSystems services.
    Restart-OSServerServices -ErrorAction Stop | Out-Null
}

function Publish-SystemComponents([hashtable]$State) {
    if (-not $HostsServiceCenter) { return }
    $serverVersion = Get-OSServerVersion -ErrorAction Stop
    $credential = Get-AdminCredential
    if ($State['systemComponents'] -ne $serverVersion) {
        # Both cmdlets skip what is already compiled for this server version.
        Write-Step 'Service Center: installing'
        Install-OSPlatformServiceCenter -ErrorAction Stop | Out-Null
        Write-Step 'System components: publishing'
        $result = Publish-OSPlatformSystemComponents -Credential $credential -ErrorAction Stop
        if ($result -and -not $result.Success) { throw "System components: $($result.Message)" }
        $State['systemComponents'] = $serverVersion
        Save-SetupState $State
    }
    if (-not $State['license']) {
        # Only once: a license the customer installs later must survive re-runs.
        Install-TrialLicense
        $State['license'] = 'trial'
        Save-SetupState $State
    }
}

function Publish-Lifetime([hashtable]$State) {
    if ($Role -eq 'lifetime' -and $State['lifetimePublished'] -ne $LifetimeVersion) {
        Write-Step 'LifeTime: publishing'
        $result = Publish-OSPlatformLifetime -Credential (Get-AdminCredential) -ErrorAction Stop
        if ($result -and -not $result.Success) { throw "LifeTime: $($result.Message)" }
        $State['lifetimePublished'] = $LifetimeVersion
        Save-SetupState $State
    }
}

function Install-TrialLicense {
    Write-Step 'License: installing the trial license'
    try {
        Install-OSPlatformLicense -ErrorAction Stop | Out-Null
    }
    catch {
        # The cmdlet passes no credentials, which current Configuration Tools want; it saved the
        # trial license to %TEMP%\license.lic.
        $file = Join-Path $env:TEMP 'license.lic'
        if (-not (Test-Path -LiteralPath $file)) { throw }
        Invoke-ConfigurationTool @('/UploadLicense', $file, 'admin', $AdminPassword) '/UploadLicense'
    }
}

function Set-ServerTuning([hashtable]$State) {
    $serverVersion = Get-OSServerVersion -ErrorAction Stop
    if ($State['tuning'] -eq $serverVersion) { return }
    Write-Step 'Tuning and security settings: applying'
    Set-OSServerPerformanceTunning2 -ErrorAction Stop | Out-Null
    Set-OSServerSecuritySettings -ErrorAction Stop | Out-Null
    $State['tuning'] = $serverVersion
    Save-SetupState $State
}

function Get-FirewallRules([string]$Role) {
    # Inbound ports per role from OutSystems' network requirements (tested against the page). A
    # controller without the front-end role gets 12000, 5672 and LifeTime's 80/443.
    $rules = @(
        @{ Name = 'OutSystems-HTTP'; Port = 80; Remote = 'Any'; Roles = @('frontend', 'standalone', 'lifetime', 'controller') }
        @{ Name = 'OutSystems-HTTPS'; Port = 443; Remote = 'Any'; Roles = @('frontend', 'standalone', 'lifetime', 'controller') }
        @{ Name = 'OutSystems-DeploymentController'; Port = 12000; Remote = 'LocalSubnet'; Roles = @('controller', 'standalone', 'lifetime') }
        @{ Name = 'OutSystems-CacheInvalidation'; Port = 5672; Remote = 'LocalSubnet'; Roles = @('controller', 'standalone', 'lifetime') }
        @{ Name = 'OutSystems-DeploymentService'; Port = 12001; Remote = 'LocalSubnet'; Roles = @('frontend', 'standalone', 'lifetime') }
        @{ Name = 'OutSystems-Scheduler'; Port = 12002; Remote = 'LocalSubnet'; Roles = @('frontend', 'standalone', 'lifetime') }
    )
    return @($rules | Where-Object { $_.Roles -contains $Role })
}

function Set-FirewallRules {
    $rules = Get-FirewallRules -Role $Role
    foreach ($rule in $rules) {
        $arguments = @{ Name = $rule.Name; Enabled = 'True'; Direction = 'Inbound'; Action = 'Allow'; Protocol = 'TCP'; LocalPort = $rule.Port; RemoteAddress = $rule.Remote }
        if (Get-NetFirewallRule -Name $rule.Name -ErrorAction SilentlyContinue) { Set-NetFirewallRule @arguments }
        else { New-NetFirewallRule @arguments -DisplayName $rule.Name | Out-Null }
    }
    # Rules this role no longer needs (e.g. after a role change) are removed.
    $wanted = @($rules | ForEach-Object { $_.Name })
    Get-NetFirewallRule | Where-Object { $_.Name -like 'OutSystems-*' -and $wanted -notcontains $_.Name -and $_.Name -ne $DrainRule } | Remove-NetFirewallRule
    Write-Step "Firewall: inbound TCP $(($rules | ForEach-Object { $_.Port }) -join ', ') allowed"
}

function Register-ScaleInWatcher {
    if (-not $IsFrontend) { return }
    Write-Step "Scale-in: task $WatchTask watches for a Terminate event"
    $triggers = @((New-ScheduledTaskTrigger -AtStartup), (New-ScheduledTaskTrigger -Once -At (Get-Date).AddMinutes(1)))
    Register-SystemTask $WatchTask $triggers (Get-ScriptArguments 'WatchTermination') ([timespan]::Zero)
}

function Watch-TerminateNotification {
    # Azure Scheduled Events: a Terminate naming this instance, approved with StartRequests.
    $name = Invoke-Imds 'instance/compute/name?api-version=2021-02-01&format=text'
    $handled = @{}
    while ($true) {
        $document = Invoke-Imds 'scheduledevents?api-version=2020-07-01'
        foreach ($scheduled in @($document.Events)) {
            if ($scheduled.EventType -ne 'Terminate' -or @($scheduled.Resources) -notcontains $name -or $handled[$scheduled.EventId]) { continue }
            Stop-TakingTraffic
            if ($scheduled.EventStatus -eq 'Scheduled' -and $scheduled.NotBefore) {
                # Requests drain until shortly before NotBefore, then Azure may go on.
                $until = [datetime]::Parse($scheduled.NotBefore).AddSeconds(-15)
                while ((Get-Date) -lt $until) { Start-Sleep -Seconds 5 }
                Invoke-Imds 'scheduledevents?api-version=2020-07-01' 'Post' (@{ StartRequests = @(@{ EventId = $scheduled.EventId }) } | ConvertTo-Json -Depth 3) | Out-Null
            }
            $handled[$scheduled.EventId] = $true
        }
        Start-Sleep -Seconds 10
    }
}

function Block-GatewayTraffic {
    # Refusing new connections from the gateway fails its probe; open ones drain.
    if (-not (Get-NetFirewallRule -Name $DrainRule -ErrorAction SilentlyContinue)) {
        New-NetFirewallRule -Name $DrainRule -DisplayName $DrainRule -Direction Inbound -Action Block -Protocol TCP -LocalPort @(80, 443) -RemoteAddress ($TrustedProxyAddresses.Split(',')) | Out-Null
    }
}

function Enable-OSService([string]$Name) {
    # Start-Service cannot start a Disabled service (Microsoft's Start-Service reference).
    Set-Service -Name $Name -StartupType Automatic
    Start-Service -Name $Name
}

function Set-FrontendService {
    # A front-end's part of balanced-upgrade-highly-loaded-farms.md; the gateway's pool is not.
    if (-not $IsFrontend) { throw "-Mode $Mode is for front-ends, not a $Role" }
    switch ($Mode) {
        'Drain' { Block-GatewayTraffic; 'drained' }
        'HoldDeployments' {
            # Its step 2 (Service Center's Disable) as balanced-app-deploy.md step 3 does it.
            Stop-Service -Name $DeploymentService -Force
            Set-Service -Name $DeploymentService -StartupType Disabled
            'holding deployments'
        }
        'Serve' {
            Get-NetFirewallRule -Name $DrainRule -ErrorAction SilentlyContinue | Remove-NetFirewallRule
            # Releases a hold too (balanced-app-deploy.md step 8).
            Enable-OSService $DeploymentService
            'serving'
        }
    }
}

function Complete-Upgrade([hashtable]$State) {
    if (-not $State['upgradeFrom']) { return }
    # balanced-upgrade-highly-loaded-farms.md step 7.
    if ($IsFrontend) { Enable-OSService $DeploymentService }
    # Health gate: the gateway's probe path answers here (a drained server is not probed).
    $deadline = (Get-Date).AddMinutes($HealthWaitMinutes)
    while ($true) {
        try { Invoke-RestMethod -Uri "http://localhost$HealthPath" -UseBasicParsing -TimeoutSec 30 | Out-Null; return }
        catch { if ((Get-Date) -gt $deadline) { throw "health check: $HealthPath failed for $HealthWaitMinutes minutes after the upgrade ($($_.Exception.Message))" } }
        Start-Sleep -Seconds 20
    }
}

function Stop-TakingTraffic {
    # Scale-in: no new connections, no timer starts.
    Block-GatewayTraffic
    Stop-Service -Name $SchedulerService -Force -ErrorAction SilentlyContinue
    # No unattended way to delete a server registration exists: leave a note on the share.
    try {
        $headers = Get-ShareHeaders
        New-ShareDirectory 'terminated' $headers
        Send-ShareFile ([Text.Encoding]::UTF8.GetBytes("$env:COMPUTERNAME $((Get-Date).ToUniversalTime().ToString('o'))")) "terminated/$Computer.txt" $headers
    }
    catch { Write-Step "Scale-in: note not written to the share ($($_.Exception.Message))" }
}

function Copy-SetupArtifacts([string]$TranscriptPath) {
    # The Marketplace layout: <computer>/server.hsconf, <computer>/logs/*; all scrubbed first.
    $files = @{ "logs/$(Split-Path -Leaf $TranscriptPath)" = $TranscriptPath; "logs/$ModuleLog" = (Join-Path $LogDir $ModuleLog); 'logs/ConfigurationTool.log' = (Join-Path $env:SystemRoot 'Temp\ConfigurationTool.log') }
    foreach ($log in @(Get-ChildItem -Path (Join-Path $env:SystemRoot 'Temp') -Filter '*.log' -ErrorAction SilentlyContinue | Where-Object { $_.Name -like 'PlatformServer*' -or $_.Name -like 'LifeTime*' })) {
        $files["logs/$($log.Name)"] = $log.FullName
    }
    try {
        $headers = Get-ShareHeaders
        New-ShareDirectory $computer $headers
        New-ShareDirectory "$computer/logs" $headers
        foreach ($target in $files.Keys) {
            if (-not (Test-Path -LiteralPath $files[$target])) { continue }
            try {
                $text = Protect-Text ([IO.File]::ReadAllText($files[$target]))
                Send-ShareFile ([Text.Encoding]::UTF8.GetBytes($text)) "$computer/$target" $headers
            }
            catch { Write-Step "Setup logs: $target not copied ($($_.Exception.Message))" }
        }
        if (Get-Command -Name 'Get-OSServerInstallDir' -ErrorAction SilentlyContinue) {
            $hsconf = Join-Path ([string](Get-OSServerInstallDir -ErrorAction SilentlyContinue)) 'server.hsconf'
            if (Test-Path -LiteralPath $hsconf) {
                Send-ShareFile ([Text.Encoding]::UTF8.GetBytes((Get-ProtectedHsconf $hsconf))) "$computer/server.hsconf" $headers
            }
        }
        Write-Step "Setup logs copied to $(Get-ShareUri $computer)"
    }
    catch {
        Write-Step "Setup logs not copied to the file share ($($_.Exception.Message)); they stay in $LogDir"
    }
}

function Protect-LogFile([string]$Path) {
    # The transcript header names the host command line; drop it and any secret value.
    $lines = Get-Content -LiteralPath $Path | Where-Object { $_ -notmatch '^(Host Application|Command start time|Username|RunAs User):' }
    Set-Content -LiteralPath $Path -Value (Protect-Text ($lines -join [Environment]::NewLine)) -Encoding UTF8
}

function Invoke-Setup([hashtable]$State) {
    if ($State['rebootRequestedAt']) {
        $boot = (Get-CimInstance -ClassName Win32_OperatingSystem).LastBootUpTime.ToUniversalTime()
        if ($boot -lt [datetime]::Parse($State['rebootRequestedAt']).ToUniversalTime()) {
            $script:Pending = 'reboot pending (requested, not yet done)'
            return 3010
        }
        $State.Remove('rebootRequestedAt')
        Save-SetupState $State
        Unregister-SystemTask $RebootTask
    }
    if ($Mode -ne 'Resume' -and "$($State['lastOutcome'])".StartsWith('Resume')) {
        Write-Step "Continuation: the background run ended: $($State['lastOutcome'])"
    }
    Invoke-Preflight
    Write-Step "OutSystems setup ($Mode): role $Role, $Product $TargetVersion, controller $ControllerAddress"
    Confirm-TargetVersion $State
    Initialize-DataDisk
    $installDir = Get-InstallDir
    Import-SetupTools
    # Minutes each step may take at most.
    $steps = [ordered]@{ 'prerequisites' = 20; 'Platform Server' = 20; 'configuration' = $(if ($State['upgradeFrom']) { 45 } else { 30 }); 'publication' = 30; 'LifeTime' = 30; 'tuning' = $HealthWaitMinutes + 5 }
    foreach ($step in $steps.Keys) {
        $code = Test-RunBudget $State $step $steps[$step]
        if ($code -eq 0) {
            $code = @(switch ($step) {
                'prerequisites' { Install-Prerequisites $State }
                'Platform Server' { Install-PlatformServer $State $installDir }
                'configuration' { Disable-DeploymentControllerOnFrontend; Invoke-ServerConfiguration $State; Set-AdminPassword; Set-TlsOffloading; 0 }
                'publication' { Publish-SystemComponents $State; 0 }
                'LifeTime' { Publish-Lifetime $State; 0 }
                'tuning' { Set-ServerTuning $State; Set-FirewallRules; Register-ScaleInWatcher; Complete-Upgrade $State; 0 }
            })[-1]
        }
        if ($code -ne 0) { return $code }
    }
    if ($Role -eq 'controller') {
        Write-Step "Controller: disable its front-end role in Service Center > Administration > Servers (no unattended switch exists)"
    }
    # The last line (docs/upgrades.md); a continuation leaves it to the extension's next run.
    $now = Get-InstalledVersion
    $from = $State['upgradeFrom']
    $script:Outcome = "$(if ($from -and $from -ne $now) { "upgraded $Product $from to" } elseif ($State['freshInstall']) { "installed $Product" } else { "already at $Product" }) $now (role $Role)"
    if ($Mode -ne 'Resume') { $State.Remove('upgradeFrom'); $State.Remove('freshInstall') }
    return 0
}

#endregion

if ($Mode -eq 'WatchTermination') {
    Watch-TerminateNotification
    exit 0
}
if ($Mode -in 'Drain', 'HoldDeployments', 'Serve') {
    # Quick and secret-free: no lock, no transcript.
    try { $line, $code = "OutSystems front-end $(@(Set-FrontendService)[-1])", 0 }
    catch { $line, $code = "OutSystems setup failed: $($_.Exception.Message) (line $($_.InvocationInfo.ScriptLineNumber))", 1 }
    Write-Host $line; [Console]::Error.WriteLine($line); exit $code
}

New-Item -ItemType Directory -Force -Path $LogDir | Out-Null
$transcript = Join-Path $LogDir "setup-$Stamp.log"
Start-Transcript -LiteralPath $transcript -Append | Out-Null
$exitCode = 1
$lastLine = ''
$lock = $null
$state = @{}
try {
    $lock = Enter-SetupLock
    if (-not $lock) {
        $exitCode = 3010
        $lastLine = "OutSystems setup not finished: a background setup run is still in progress after $LockWaitMinutes minutes"
    }
    else {
        $state = Read-SetupState
        $exitCode = @(Invoke-Setup $state)[-1]
        $lastLine = if ($exitCode -eq 3010) { "OutSystems setup not finished: $Pending; apply the extension again later" } else { "OutSystems setup succeeded: $Outcome" }
    }
}
catch {
    # The message and position only: an error record's full text could echo bound values.
    $exitCode = 1
    $lastLine = "OutSystems setup failed: $(Protect-Text $_.Exception.Message) (line $($_.InvocationInfo.ScriptLineNumber))"
}
finally {
    if ($lastLine) { Write-Step $lastLine }
    if ($lock) {
        if ($exitCode -ne 3010) {
            # One-shot continuation; its outcome is kept for the extension's next run.
            Unregister-SystemTask $ResumeTask
            $state['lastOutcome'] = "$Mode $(if ($exitCode -eq 0) { 'succeeded' } else { "failed: $lastLine" })"
            if ($exitCode -eq 0) { $state.Remove('reboots') }
            Save-SetupState $state
        }
        $lock.ReleaseMutex()
        $lock.Dispose()
    }
    Stop-Transcript | Out-Null
    Protect-LogFile $transcript
    Copy-SetupArtifacts $transcript
}
# The extension shows the last 4,096 bytes of output: the outcome is the last line.
# Standard error too: the Custom Script Extension quotes a failed command's error output (not
# its standard output) in the VMExtensionProvisioningError that ARM, and so the app, reports.
if ($lastLine) { Write-Host $lastLine; [Console]::Error.WriteLine($lastLine) }
exit $exitCode
